-- idnode schema version 2: the transaction log, which mirrors replicate from.
--
-- Every write appends one row per handle or prefix it changed, in the same transaction as the
-- change (idnode.store.txnlog): `action` is the reference server's transaction action (1
-- create, 2 delete, 3 update, 4 home prefix, 5 unhome prefix); `handle` is the handle as
-- written (for 4 and 5 the prefix handle 0.NA/<prefix>); `date_ms` is the commit time in
-- milliseconds since the epoch. The values are not logged: a mirror is sent the record as it is
-- when it asks, as the reference server does.
--
-- txn_counter holds the last transaction id handed out. Writers increment it as the last
-- statement before COMMIT; on PostgreSQL its row lock is held to the commit, so ids are
-- assigned in commit order and a mirror that has seen id N has seen every id below it.
--
-- replication_sources records, on a mirror, how far it has followed each source server:
-- `source` is "<server number>:<address>:<port>" of a primary site's server.

CREATE TABLE txn_log (
    txn_id BIGINT NOT NULL PRIMARY KEY,
    handle TEXT NOT NULL,
    action SMALLINT NOT NULL,
    date_ms BIGINT NOT NULL
) WITHOUT ROWID;

CREATE TABLE txn_counter (
    id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_txn_id BIGINT NOT NULL
) WITHOUT ROWID;

INSERT INTO txn_counter (id, last_txn_id) VALUES (1, 0);

CREATE TABLE replication_sources (
    source TEXT NOT NULL PRIMARY KEY,
    last_txn_id BIGINT NOT NULL,
    last_date_ms BIGINT NOT NULL
) WITHOUT ROWID;
