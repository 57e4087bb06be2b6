-- The transactional outbox of audit entries (schakel_kit::outbox): each
-- change stages its entries here in its own transaction, so that an entry
-- exists if and only if the change committed. After the commit an entry is
-- delivered to the audit log under its append id and its row keeps only the
-- index the log gave it. Entries hold no personal data (codes and ids only).
CREATE TABLE audit_outbox (
    append_id    TEXT   PRIMARY KEY,
    -- The encoded AuditEntry while it waits for the log; NULL once delivered.
    entry        BYTEA,
    staged_at    BIGINT NOT NULL,
    audit_index  BIGINT,
    delivered_at BIGINT,
    -- Set when the log refused the entry (a bug): kept and not retried.
    rejected     TEXT
);
CREATE INDEX audit_outbox_pending ON audit_outbox (staged_at) WHERE entry IS NOT NULL;
