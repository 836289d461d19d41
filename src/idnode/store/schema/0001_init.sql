-- idnode schema version 1: handle records and the prefixes homed on this node.
--
-- Portable SQL: SQLite runs this file as it is. The PostgreSQL backend translates BLOB to
-- BYTEA, and should declare the *_key columns COLLATE "C" so that range scans on the primary
-- key compare bytes, as SQLite's default BINARY collation does.
--
-- *_key columns hold idnode.store.base.handle_key() of the display column next to them
-- (ASCII letters upper-cased), so lookups are case-insensitive while the string as first
-- created is kept for display. Value indexes are unsigned 32-bit integers, hence BIGINT.
-- The schema_migrations table is created by idnode.store.migrations, not by this file.

CREATE TABLE handles (
    handle_key TEXT NOT NULL PRIMARY KEY,
    handle TEXT NOT NULL
);

CREATE TABLE handle_values (
    handle_key TEXT NOT NULL REFERENCES handles (handle_key) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    type TEXT NOT NULL,
    -- HandleValue.encode(): the single source of truth; idx and type are copies for queries.
    value BLOB NOT NULL,
    PRIMARY KEY (handle_key, idx)
);

CREATE TABLE homed_prefixes (
    prefix_key TEXT NOT NULL PRIMARY KEY,
    prefix TEXT NOT NULL
);
