-- idnode schema version 4: statistics per prefix per day, and what child nodes report.
--
-- stats_daily holds, per prefix and UTC day ('YYYY-MM-DD'), the resolutions this node answered
-- and the registrations (CREATE entries of the transaction log) it made. Both only grow: the
-- node's flusher (idnode.server.stats) adds the resolutions counted in memory since its last
-- flush and the CREATE entries of the log after stats_position, in one transaction that also
-- moves stats_position, so a restart neither loses nor counts twice what was flushed.
-- `prefix_key` is the prefix upper-cased as handle_key does; `prefix` as first seen.
--
-- child_reports holds, on a parent node, the last report of each child node (`child` is the
-- identity it authenticated as, "index:handle"): when it came and the prefixes it listed, as
-- the JSON it sent. child_stats holds the per prefix per day counts children reported; a
-- report carries a child's totals for the days it covers, which replace the rows held, so a
-- report sent twice changes nothing.

CREATE TABLE stats_daily (
    prefix_key TEXT NOT NULL,
    day TEXT NOT NULL,
    prefix TEXT NOT NULL,
    resolutions BIGINT NOT NULL,
    registrations BIGINT NOT NULL,
    PRIMARY KEY (prefix_key, day)
) WITHOUT ROWID;

CREATE INDEX stats_daily_by_day ON stats_daily (day);

CREATE TABLE stats_position (
    id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_txn_id BIGINT NOT NULL
) WITHOUT ROWID;

INSERT INTO stats_position (id, last_txn_id) VALUES (1, 0);

CREATE TABLE child_reports (
    child TEXT NOT NULL PRIMARY KEY,
    received_ms BIGINT NOT NULL,
    report TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE child_stats (
    child TEXT NOT NULL,
    prefix_key TEXT NOT NULL,
    day TEXT NOT NULL,
    prefix TEXT NOT NULL,
    resolutions BIGINT NOT NULL,
    registrations BIGINT NOT NULL,
    PRIMARY KEY (child, prefix_key, day)
) WITHOUT ROWID;
