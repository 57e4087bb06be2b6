-- The chain process around the phases: when the decided track started and
-- its next review is due, the earliest review date of a deferred informing
-- (metadata: the deferral itself and its explanation stay sealed), and the
-- notices partner systems follow with WatchEvents.
ALTER TABLE dossiers ADD COLUMN track_since BIGINT;
ALTER TABLE dossiers ADD COLUMN review_due_at BIGINT;
ALTER TABLE dossiers ADD COLUMN informing_review_at BIGINT;

-- Dossiers already in the process get their dates from the start of their
-- phase, with the default periods (182 days to the follow-up check; reviews
-- every 120 days for spoor 2, 91 for spoor 3); informing review dates follow
-- at the next informing change.
UPDATE dossiers SET track_since = phase_since
 WHERE phase IN (4, 5) AND track IN (2, 3) AND track_since IS NULL;
UPDATE dossiers SET review_due_at = phase_since + CASE track WHEN 2 THEN 10368000 ELSE 7862400 END
 WHERE phase = 4 AND track IN (2, 3) AND review_due_at IS NULL;
UPDATE dossiers SET follow_up_check_at = phase_since + 15724800
 WHERE phase = 5 AND follow_up_check_at IS NULL;

-- What happened, for WatchEvents (metadata only). audience '' is the whole
-- circle, otherwise one organisation. Notices that the clock brings (a due
-- date reached) carry once_key, so that each is raised once whichever
-- instance sweeps. Notices are written in the transaction of their change:
-- seq follows commit order (SQLite: one writer; PostgreSQL: an advisory lock
-- taken by every transaction that writes notices).
CREATE TABLE notices (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
