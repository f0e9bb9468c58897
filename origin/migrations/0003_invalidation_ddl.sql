-- What the durable invalidator last invalidated for each table that feeds
-- invalidation_log (proxy/invalidator/doc.go, "Schema changes"). Triggers
-- see rows, not tables: TRUNCATE, DROP, RENAME and a restored backup
-- change the data without a log row. The invalidator compares each table's
-- InnoDB table id and triggers with the row here; when they differ it
-- flushes memcached, waits out the proxies' leases, and only then writes
-- the new row, so that a change made while no invalidator ran is still
-- found by the next leader.
--
-- A table stays watched, and a missing trigger on it reported, as long as
-- its row is here: after dropping such a table for good, delete its row.
CREATE TABLE IF NOT EXISTS invalidation_ddl (
  table_name VARCHAR(64)     NOT NULL,
  table_id   BIGINT UNSIGNED NOT NULL,   -- InnoDB's id of the table; TRUNCATE gives a new one; 0: no such table
  triggers   TEXT            NOT NULL,   -- its triggers, name@created, sorted, comma-separated
  applied_at DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (table_name)
) ENGINE=InnoDB;
