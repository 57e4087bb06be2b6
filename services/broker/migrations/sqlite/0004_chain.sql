-- The chain process around the phases: when the decided track started and
-- its next review is due, the earliest review date of a deferred informing
-- (metadata: the deferral itself and its explanation stay sealed), and the
-- notices partner systems follow with WatchEvents.
ALTER TABLE dossiers ADD COLUMN track_since BIGINT;
ALTER TABLE dossiers ADD COLUMN review_due_at BIGINT;
ALTER TABLE dossiers ADD COLUMN informing_review_at BIGINT;

-- What happened, for WatchEvents (metadata only). audience '' is the whole
-- circle, otherwise one organisation. Notices that the clock brings (a due
-- date reached) carry once_key, so that each is raised once whichever
-- instance sweeps. Notices are written in the transaction of their change:
-- seq follows commit order (SQLite: one writer; PostgreSQL: an advisory lock
-- taken by every transaction that writes notices).
CREATE TABLE notices (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier_id TEXT   NOT NULL REFERENCES dossiers (dossier_id),
    kind       BIGINT NOT NULL,
    audience   TEXT   NOT NULL,
    request_id TEXT   NOT NULL,
    phase      BIGINT NOT NULL,
    due_at     BIGINT,
    at         BIGINT NOT NULL,
    once_key   TEXT   UNIQUE
);
CREATE INDEX notices_by_dossier ON notices (dossier_id, seq);
CREATE INDEX dossiers_by_district ON dossiers (district, phase);
