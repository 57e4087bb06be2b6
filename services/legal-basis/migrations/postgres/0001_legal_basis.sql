-- Legal-basis service schema (PostgreSQL). Times are seconds since the epoch.
-- Terms, approvals and informing details are stored as their protobuf
-- encoding (schakel.v1), the columns beside them are what queries need.

-- One row per agreement: what all its versions share.
CREATE TABLE agreements (
    agreement_id   TEXT PRIMARY KEY,
    created_at     BIGINT NOT NULL,
    latest_version BIGINT NOT NULL,
    -- Dossiers counted against the cap, over all versions (= rows in
    -- counted_dossiers); updated with a conditional UPDATE so that two
    -- registrations can never both take the last place.
    dossier_count  BIGINT NOT NULL,
    revoked_at     BIGINT,
    revocation     BYTEA
);

-- Versions: 1 is the original, each amendment adds one. A version is a draft
-- until approved_at is set; from then on it is never changed or deleted.
CREATE TABLE agreement_versions (
    agreement_id   TEXT   NOT NULL REFERENCES agreements (agreement_id),
    version        BIGINT NOT NULL,
    terms          BYTEA  NOT NULL,
    approval       BYTEA,
    approved_at    BIGINT,
    valid_from     BIGINT NOT NULL,
    valid_until    BIGINT NOT NULL,
    change_summary TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, version)
);
CREATE INDEX agreement_versions_approved ON agreement_versions (approved_at);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END;
$$;

CREATE TRIGGER approved_versions_are_immutable
BEFORE UPDATE OR DELETE ON agreement_versions
FOR EACH ROW WHEN (OLD.approved_at IS NOT NULL)
EXECUTE FUNCTION refuse_change('approved agreement versions are immutable');

-- Dossiers counted against an agreement's cap (new dossiers only, once).
CREATE TABLE counted_dossiers (
    agreement_id TEXT   NOT NULL REFERENCES agreements (agreement_id),
    dossier_id   TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    counted_at   BIGINT NOT NULL,
    PRIMARY KEY (agreement_id, dossier_id)
);
CREATE INDEX counted_dossiers_by_dossier ON counted_dossiers (dossier_id);

-- Informing the client system: append-only; the latest record per person counts.
CREATE TABLE informing_records (
    seq         BIGSERIAL PRIMARY KEY,
    record_id   TEXT   NOT NULL UNIQUE,
    dossier_id  TEXT   NOT NULL,
    person_id   TEXT   NOT NULL,
    state       BIGINT NOT NULL,
    details     BYTEA  NOT NULL,
    recorded_by BYTEA  NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX informing_by_dossier ON informing_records (dossier_id, person_id, seq);

CREATE TRIGGER informing_records_are_not_updated
BEFORE UPDATE ON informing_records
FOR EACH ROW EXECUTE FUNCTION refuse_change('informing records are append-only');
