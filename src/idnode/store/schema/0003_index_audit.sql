-- idnode schema version 3: the write index (traceability, unique values) and the audit trail.
--
-- handle_index holds the index entries of each handle (idnode.store.writectx.IndexEntry), which
-- the layer above computes from the record and its template and the store writes in the same
-- transaction as the record: `kind` 1 REFERENCE (`entry_key` is the handle key of an
-- identifier the record references, `detail` the attribute holding it) or 2 UNIQUE
-- (`entry_key` is "<template handle key> <attribute> <value>"). Entries exist only for
-- handles that exist: a write replaces the entries of the handles it was given entries for,
-- and deleting a handle deletes its entries.
--
-- The primary key serves the reverse lookup "which records reference X" (kind = 1 and
-- entry_key = X, in handle_key order) without a scan; handle_index_by_handle serves the
-- replacement of one handle's entries and "what does H reference"; handle_index_unique makes
-- a UNIQUE key belong to one handle at most (a partial index, which SQLite and PostgreSQL
-- both have).
--
-- The transaction log becomes the audit trail: `actor` (the identity, "index:handle" or an
-- account name) and `origin` (the client's address) of the write that appended each entry,
-- NULL when unknown (entries written before this version, or writes made without a write
-- context). `handle_key` is the handle key of `handle`, so the trail of one handle is an
-- index range; the existing entries get theirs from the UPDATE below, which upper-cases ASCII
-- letters only, exactly as idnode.store.base.handle_key does (a nested replace() because
-- SQLite's and PostgreSQL's upper() differ beyond ASCII).

CREATE TABLE handle_index (
    kind SMALLINT NOT NULL,
    entry_key TEXT NOT NULL,
    handle_key TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (kind, entry_key, handle_key, detail)
) WITHOUT ROWID;

CREATE INDEX handle_index_by_handle ON handle_index (handle_key, kind);

CREATE UNIQUE INDEX handle_index_unique ON handle_index (entry_key) WHERE kind = 2;

ALTER TABLE txn_log ADD COLUMN handle_key TEXT;

ALTER TABLE txn_log ADD COLUMN actor TEXT;

ALTER TABLE txn_log ADD COLUMN origin TEXT;

UPDATE txn_log SET handle_key =
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
    replace(replace(replace(replace(replace(replace(handle,
    'a', 'A'), 'b', 'B'), 'c', 'C'), 'd', 'D'), 'e', 'E'), 'f', 'F'), 'g', 'G'),
    'h', 'H'), 'i', 'I'), 'j', 'J'), 'k', 'K'), 'l', 'L'), 'm', 'M'), 'n', 'N'),
    'o', 'O'), 'p', 'P'), 'q', 'Q'), 'r', 'R'), 's', 'S'), 't', 'T'), 'u', 'U'),
    'v', 'V'), 'w', 'W'), 'x', 'X'), 'y', 'Y'), 'z', 'Z');

CREATE INDEX txn_log_by_handle ON txn_log (handle_key, txn_id);
