-- Broker schema (PostgreSQL). Times are seconds since the epoch. No column holds
-- personal data in clear: names, numbers and every field value live only in
-- `contributions.value`, sealed under the dossier's data key (see src/keys.rs),
-- and that key only wrapped by a master key. Erasing a dossier deletes its
-- wrapped key: what remains can no longer be read (crypto-shredding).

CREATE TABLE dossiers (
    dossier_id            TEXT   PRIMARY KEY,
    district              TEXT   NOT NULL,
    requested_track       BIGINT NOT NULL,
    track                 BIGINT NOT NULL,
    phase                 BIGINT NOT NULL,
    phase_since           BIGINT NOT NULL,
    registered_at         BIGINT NOT NULL,
    registering_org       TEXT   NOT NULL,
    -- The agreement version the dossier was registered under.
    basis_agreement_id    TEXT   NOT NULL,
    basis_version         BIGINT NOT NULL,
    case_director_user    TEXT,
    case_director_org     TEXT,
    case_director_at      BIGINT,
    case_director_by      TEXT,
    follow_up_check_at    BIGINT,
    closed_at             BIGINT,
    erase_after           BIGINT,
    updated_at            BIGINT NOT NULL,
    revision              BIGINT NOT NULL,
    -- The registering organisation's retry key: one dossier per key.
    idempotency_key       TEXT   NOT NULL,
    -- The data key, sealed by master key `key_id`; NULL once erased.
    key_id                TEXT,
    wrapped_key           BYTEA,
    erased_at             BIGINT,
    UNIQUE (registering_org, idempotency_key)
);
CREATE INDEX dossiers_by_phase ON dossiers (phase, dossier_id);

-- The need-to-know circle.
CREATE TABLE participants (
    dossier_id      TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    organisation_id TEXT   NOT NULL,
    partner_type    TEXT   NOT NULL,
    registrant      BIGINT NOT NULL,
    added_by        TEXT   NOT NULL,
    added_at        BIGINT NOT NULL,
    PRIMARY KEY (dossier_id, organisation_id)
);
CREATE INDEX participants_by_organisation ON participants (organisation_id, dossier_id);

-- Persons of the client system: pseudonymous ids and their roles (codes).
CREATE TABLE persons (
    person_id  TEXT   PRIMARY KEY,
    dossier_id TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    roles      TEXT   NOT NULL,
    added_at   BIGINT NOT NULL
);
CREATE INDEX persons_by_dossier ON persons (dossier_id);

-- Keyed hashes (HMAC-SHA256) of a person's national register number and of
-- their normalised name and birth date, for LookupDataSubject. Deleted when
-- the dossier is erased.
CREATE TABLE person_lookup (
    token     BYTEA NOT NULL,
    person_id TEXT  NOT NULL REFERENCES persons (person_id),
    PRIMARY KEY (token, person_id)
);

-- Every contributed value, sealed; corrections supersede, history is kept.
CREATE TABLE contributions (
    contribution_id  TEXT   PRIMARY KEY,
    dossier_id       TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    seq              BIGINT NOT NULL,
    path             TEXT   NOT NULL,
    person_id        TEXT   NOT NULL,
    -- Sealed FieldValue (protobuf); NULL for a retraction.
    value            BYTEA,
    source_org       TEXT   NOT NULL,
    source_type      TEXT   NOT NULL,
    author           TEXT   NOT NULL,
    contributed_at   BIGINT NOT NULL,
    purpose          TEXT   NOT NULL,
    supersedes       TEXT,
    superseded_by    TEXT,
    request_id       TEXT,
    UNIQUE (dossier_id, seq)
);
CREATE INDEX contributions_by_field ON contributions (dossier_id, path, seq);

-- Information requests (vraag tot infodeling) between organisations. The
-- request itself (protobuf) is sealed under the dossier key: justification,
-- notes and explanations are free text. Beside it, what inboxes need.
CREATE TABLE information_requests (
    request_id TEXT   PRIMARY KEY,
    dossier_id TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    from_org   TEXT   NOT NULL,
    to_org     TEXT   NOT NULL,
    status     BIGINT NOT NULL,
    due_at     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    sealed     BYTEA  NOT NULL
);
CREATE INDEX requests_inbox ON information_requests (to_org, created_at);
CREATE INDEX requests_outbox ON information_requests (from_org, created_at);
