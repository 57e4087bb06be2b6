-- Four-eyes for oversight accounts and revocation of issued tokens (issue 14).
-- A user created with an oversight role (privacy_officer, coordinator) waits
-- for a second coordinator's approval before they can log in.
ALTER TABLE users ADD COLUMN pending_approval BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN created_by TEXT;
ALTER TABLE users ADD COLUMN approved_by TEXT;
-- When a service account's tokens were last voided (disabled, or given a new
-- secret): tokens issued at or before are refused by every verifier.
ALTER TABLE service_accounts ADD COLUMN revoked_at BIGINT;
CREATE INDEX users_disabled_at ON users (disabled_at) WHERE disabled_at IS NOT NULL;
CREATE INDEX service_accounts_revoked_at ON service_accounts (revoked_at) WHERE revoked_at IS NOT NULL;
