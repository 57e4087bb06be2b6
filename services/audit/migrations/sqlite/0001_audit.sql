-- Audit log schema (SQLite). Times are seconds since the epoch.

-- Tree nodes: level 0 holds the leaf hashes, level l the hash of the perfect
-- subtree of 2^l leaves starting at leaf idx << l. Every proof is assembled
-- from O(log n) of these rows; the tree is never loaded whole.
CREATE TABLE nodes (
    level BIGINT  NOT NULL,
    idx   BIGINT  NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Entry bodies (the canonical bytes, verbatim) and the columns privacy officers
-- query on. `body` becomes NULL after retention; the leaf hash stays in `nodes`.
CREATE TABLE entries (
    idx             BIGINT PRIMARY KEY,
    body            BLOB,
    time            BIGINT NOT NULL,
    append_id       TEXT   NOT NULL UNIQUE,
    actor_org       TEXT   NOT NULL,
    actor_subject   TEXT   NOT NULL,
    target_org      TEXT   NOT NULL,
    dossier_id      TEXT   NOT NULL,
    action          BIGINT NOT NULL,
    decision        BIGINT NOT NULL,
    purpose         TEXT   NOT NULL,
    trace_id        TEXT   NOT NULL
);
CREATE INDEX entries_by_time ON entries (time);
CREATE INDEX entries_by_actor_org ON entries (actor_org, idx);
CREATE INDEX entries_by_target_org ON entries (target_org, idx);
CREATE INDEX entries_by_subject ON entries (actor_subject, idx);
CREATE INDEX entries_by_dossier ON entries (dossier_id, idx);

CREATE TABLE entry_persons (
    person_id TEXT   NOT NULL,
    idx       BIGINT NOT NULL,
    PRIMARY KEY (person_id, idx)
) WITHOUT ROWID;

-- One signed checkpoint per committed batch: each commits to a prefix of the log,
-- so a verifier can tell which batch of entries was altered.
CREATE TABLE checkpoints (
    size      BIGINT PRIMARY KEY,
    root      BLOB   NOT NULL,
    note      TEXT   NOT NULL,
    signed_at BIGINT NOT NULL
);
