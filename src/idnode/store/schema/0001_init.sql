-- idnode schema version 1: handle records and the prefixes homed on this node.
--
-- One row per handle: `record` is idnode.protocol.values.encode_record(values), the wire form
-- of the value list (int4 count, then every value encoded, in index order). It is the single
-- source of truth, read and written whole; a resolution without filters sends it as it is.
--
-- *_key columns hold idnode.store.base.handle_key() of the handle (ASCII letters
-- upper-cased), so lookups are case-insensitive; `handle` keeps the spelling as first created
-- when it differs from the key (NULL otherwise, to save the bytes).
--
-- Portable SQL: SQLite runs this file as it is (WITHOUT ROWID stores each row once, in the
-- primary-key b-tree). For PostgreSQL, idnode.store.migrations drops WITHOUT ROWID, turns BLOB
-- into BYTEA and declares *_key columns COLLATE "C", so that range scans compare bytes as
-- SQLite's BINARY collation does. The schema_migrations table is created by that module.

CREATE TABLE handles (
    handle_key TEXT NOT NULL PRIMARY KEY,
    handle TEXT,
    record BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE homed_prefixes (
    prefix_key TEXT NOT NULL PRIMARY KEY,
    prefix TEXT NOT NULL
) WITHOUT ROWID;
