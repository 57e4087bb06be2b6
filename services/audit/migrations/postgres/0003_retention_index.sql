-- The retention records (action AUDIT_ACTION_RETENTION_APPLY = 404), found
-- without scanning the entries; no other entry enters this index, so appends
-- do not pay for it.
CREATE INDEX entries_retention ON entries (idx) WHERE action = 404;
