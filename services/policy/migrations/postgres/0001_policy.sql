-- Policy service schema (PostgreSQL). Times are seconds since the epoch.
-- One row per version: the three files as authored, and the lifecycle.
CREATE TABLE policy_versions (
    version          BIGINT PRIMARY KEY,
    -- proposed | active | superseded | rejected | stale
    status           TEXT   NOT NULL,
    -- 1 for the one active version, NULL for every other: the UNIQUE
    -- constraint makes two active versions impossible.
    active           BIGINT UNIQUE,
    base_version     BIGINT NOT NULL,
    description      TEXT   NOT NULL,
    content_sha256   BYTEA  NOT NULL,
    model_conf       TEXT   NOT NULL,
    policy_csv       TEXT   NOT NULL,
    fields_csv       TEXT   NOT NULL,
    proposed_by      TEXT   NOT NULL,
    proposed_at      BIGINT NOT NULL,
    decided_by       TEXT   NOT NULL,
    decided_at       BIGINT,
    rejection_reason TEXT   NOT NULL,
    activated_at     BIGINT
);
