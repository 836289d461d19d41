-- idnode schema version 5: accounts, enterprises and enterprise prefix applications
-- (idnode.industry.accounts, idnode.store.accounts_sql).
--
-- accounts: one row per login of the REST APIs. `password_hash` is "scrypt$<n>$<r>$<p>$<salt
-- hex>$<hash hex>"; `v1_digest` is the lowercase hex SHA-256 of the plain password, which the
-- SNMS hashed login (/identity/token/v1) needs to check sha256(v1_digest + date) and which is
-- therefore password-equivalent for that login (docs/snms-api.md). `role` is node_admin,
-- auditor, enterprise_admin or app; `enterprise_id` is set for the last two. `identity` is the
-- Handle identity ("index:handle") everything the account does runs as.
--
-- enterprises: `id` is a short code chosen by the node admin; `admin_identity` is the identity
-- the HS_ADMIN of the enterprise's prefix handles names (through the group at 200).
--
-- prefix_applications: one row per enterprise prefix (the key is the prefix's handle key);
-- `state` applied, approved, active, suspended or cancelled. prefix_transitions records every
-- state change: who (`actor`, an account name) and when (`at_ms`), numbered per prefix.

CREATE TABLE accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    v1_digest TEXT NOT NULL,
    role TEXT NOT NULL,
    enterprise_id TEXT,
    identity TEXT NOT NULL,
    enabled SMALLINT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE INDEX accounts_by_enterprise ON accounts (enterprise_id);

CREATE TABLE enterprises (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    contact TEXT NOT NULL,
    status TEXT NOT NULL,
    admin_identity TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE prefix_applications (
    prefix_key TEXT PRIMARY KEY,
    prefix TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    state TEXT NOT NULL,
    hosted SMALLINT NOT NULL,
    applied_by TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE INDEX prefix_applications_by_enterprise ON prefix_applications (enterprise_id);

CREATE TABLE prefix_transitions (
    prefix_key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (prefix_key, seq)
);
