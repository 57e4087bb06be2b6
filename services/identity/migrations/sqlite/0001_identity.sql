-- Identity service schema (SQLite). Timestamps are seconds since the epoch.
CREATE TABLE partner_types (
    code        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    builtin     BIGINT NOT NULL
);

CREATE TABLE organisations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    partner_type TEXT NOT NULL REFERENCES partner_types (code),
    region       TEXT NOT NULL,
    kbo_number   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    roles           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    disabled        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT
);
CREATE INDEX users_by_organisation ON users (organisation_id, id);

CREATE TABLE service_accounts (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    organisation_id     TEXT NOT NULL REFERENCES organisations (id),
    roles               TEXT NOT NULL,
    secret_hash         TEXT,
    certificate_subject TEXT,
    disabled            BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);

-- Signing keys. `active` is 1 for the one key that signs, 2 for the next one
-- (published ahead of its rotation, so verifiers know it before it signs) and
-- NULL for retired keys; the UNIQUE constraint makes a second active or next key
-- impossible even when two instances start or rotate at once.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    public_key      BLOB NOT NULL,
    private_key_enc BLOB NOT NULL,
    active          BIGINT UNIQUE,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT
);

-- The kernpartners of the Ketenaanpak IFG. Coordinators add network partners.
INSERT INTO partner_types (code, description, builtin) VALUES
    ('politie', 'Lokale politiezone', 1),
    ('parket', 'Parket (openbaar ministerie)', 1),
    ('caw', 'Centrum Algemeen Welzijnswerk', 1),
    ('vk', 'Vertrouwenscentrum Kindermishandeling', 1),
    ('ggz', 'Geestelijke gezondheidszorg', 1),
    ('justitiehuis', 'Justitiehuis', 1),
    ('ocj', 'Ondersteuningscentrum Jeugdzorg', 1),
    ('veilig_huis', 'Veilig Huis', 1);
