-- Replies kept for idempotent retries (sealed under the dossier's key) and a
-- dossier's history of phase and circle changes with their reasons (sealed).
CREATE TABLE replies (
    organisation_id TEXT   NOT NULL,
    rpc             TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    request_hash    BLOB   NOT NULL,
    dossier_id      TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    sealed          BLOB   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (organisation_id, rpc, idempotency_key)
);
CREATE INDEX replies_by_dossier ON replies (dossier_id);

CREATE TABLE dossier_events (
    event_id   TEXT   PRIMARY KEY,
    dossier_id TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    at         BIGINT NOT NULL,
    sealed     BLOB   NOT NULL
);
CREATE INDEX dossier_events_by_dossier ON dossier_events (dossier_id, at);

CREATE TRIGGER dossier_events_insert_revision AFTER INSERT ON dossier_events
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = NEW.dossier_id; END;
CREATE TRIGGER dossier_events_delete_revision AFTER DELETE ON dossier_events
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = OLD.dossier_id; END;

-- ListDossiers pages newest registration first.
CREATE INDEX dossiers_by_registration ON dossiers (registered_at, dossier_id);
CREATE INDEX requests_by_dossier ON information_requests (dossier_id);
