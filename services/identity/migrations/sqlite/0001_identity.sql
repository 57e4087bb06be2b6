-- Identity service schema (SQLite). Timestamps are seconds since the epoch.
CREATE TABLE partner_types (
    code        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL
);

CREATE TABLE organisations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    partner_type TEXT NOT NULL REFERENCES partner_types (code),
    region       TEXT NOT NULL,
    kbo_number   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id),
    roles           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    disabled        BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT
);
CREATE INDEX users_by_organisation ON users (organisation_id, id);

CREATE TABLE service_accounts (
    id                  TEXT PRIMARY KEY,
    client_id           TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    organisation_id     TEXT NOT NULL REFERENCES organisations (id),
    roles               TEXT NOT NULL,
    secret_hash         TEXT,
    certificate_subject TEXT,
    disabled            BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL
);

-- Signing keys. `active` is 1 for the one key that signs and NULL for retired
-- keys; the UNIQUE constraint makes a second active key impossible even when two
-- instances start or rotate at once.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    public_key      BLOB NOT NULL,
    private_key_enc BLOB NOT NULL,
    active          INTEGER UNIQUE,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT
);

-- The kernpartners of the Ketenaanpak IFG. Coordinators add network partners.
INSERT INTO partner_types (code, description, builtin) VALUES
    ('politie', 'Lokale politiezone', TRUE),
    ('parket', 'Parket (openbaar ministerie)', TRUE),
    ('caw', 'Centrum Algemeen Welzijnswerk', TRUE),
    ('vk', 'Vertrouwenscentrum Kindermishandeling', TRUE),
    ('ggz', 'Geestelijke gezondheidszorg', TRUE),
    ('justitiehuis', 'Justitiehuis', TRUE),
    ('ocj', 'Ondersteuningscentrum Jeugdzorg', TRUE),
    ('veilig_huis', 'Veilig Huis', TRUE);
