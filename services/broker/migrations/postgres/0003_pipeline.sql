-- Replies kept for idempotent retries (sealed under the dossier's key) and a
-- dossier's history of phase and circle changes with their reasons (sealed).
CREATE TABLE replies (
    organisation_id TEXT   NOT NULL,
    rpc             TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    request_hash    BYTEA   NOT NULL,
    dossier_id      TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    sealed          BYTEA   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, rpc, idempotency_key)
);
CREATE INDEX replies_by_dossier ON replies (dossier_id);

CREATE TABLE dossier_events (
    event_id   TEXT   PRIMARY KEY,
    dossier_id TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    at         BIGINT NOT NULL,
    sealed     BYTEA   NOT NULL
);
CREATE INDEX dossier_events_by_dossier ON dossier_events (dossier_id, at);

CREATE TRIGGER dossier_events_revision AFTER INSERT OR UPDATE OR DELETE ON dossier_events
FOR EACH ROW EXECUTE FUNCTION bump_dossier_revision();

-- ListDossiers pages newest registration first.
CREATE INDEX dossiers_by_registration ON dossiers (registered_at, dossier_id);
CREATE INDEX requests_by_dossier ON information_requests (dossier_id);
