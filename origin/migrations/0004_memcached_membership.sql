-- The memcached membership the leading invalidator decides
-- (proxy/membership, proxy/invalidator/doc.go "Memcached membership").
--
-- memcached_generations is every generation it published, one row each,
-- n = the generation's number, line = membership.Gen.Line(). A decider
-- that finds n taken on INSERT (duplicate key) knows another one
-- published first, and stops. Rows are never updated.
CREATE TABLE IF NOT EXISTS memcached_generations (
  n          BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  line       VARCHAR(8192)   NOT NULL,
  created_at TIMESTAMP(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

-- memcached_desired is what operators asked for (the invalidator's POST
-- /memcached/add, remove, replace): one row, id 1, the nodes host:port,
-- sorted, comma-separated. No row: the invalidators' INVALIDATOR_MEMCACHED.
CREATE TABLE IF NOT EXISTS memcached_desired (
  id         TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  nodes      VARCHAR(8192)    NOT NULL,
  changed_at TIMESTAMP(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
