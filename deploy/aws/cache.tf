# ElastiCache for Memcached: the L2 pool every proxy shares.
#
# Memcached has no replication: a lost node loses its keys (entries, group
# versions, leases). The proxy copes: its keys go to the origin (not stored)
# while the node is down, and a group missing from memcached is "unknown"
# (fresh read from the primary), so no stale answer comes back. Nodes are
# spread over the zones (cross-az) so that losing a zone loses only that
# zone's share of the keys.
#
# Membership follows the cluster, not the launch templates. The invalidator
# gets the cluster's configuration endpoint as INVALIDATOR_MEMCACHED_DISCOVERY
# and its leader (the decider) asks it which nodes the cluster has (ElastiCache
# auto discovery, proxy/discovery); when the list changes, it moves every
# proxy to the new one generation by generation (dual-write, dual-read,
# settled: proxy/membership), with no restart. PROXY_MEMCACHED and
# INVALIDATOR_MEMCACHED list the node endpoints as seeds: where a process
# first reads the membership document. Nodes are named by DNS name on both
# sides, so the first discovered list is the seeds' list and moves no key,
# and a replaced node (same name, new IP) stays the same member, emptied.
# Adding a node moves only the keys the new node wins (1/N). Removing one
# takes its keys away at once: a node failure until the change settles.
# The seeds change with memcached_nodes, which starts an instance refresh;
# it is harmless, as a running process follows the document, not its seeds.

resource "aws_elasticache_subnet_group" "memcached" {
  name       = "${var.name}-memcached"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_parameter_group" "memcached" {
  name   = "${var.name}-memcached"
  family = "memcached1.6"

  # Items up to 1 MiB (the default); PROXY_MAX_OBJECT_BYTES (512 KiB) stays below.
  parameter {
    name  = "max_item_size"
    value = "1048576"
  }
}

resource "aws_elasticache_cluster" "memcached" {
  cluster_id           = "${var.name}-memcached"
  engine               = "memcached"
  engine_version       = var.memcached_engine_version
  node_type            = var.memcached_node_type
  num_cache_nodes      = var.memcached_nodes
  port                 = 11211
  parameter_group_name = aws_elasticache_parameter_group.memcached.name
  subnet_group_name    = aws_elasticache_subnet_group.memcached.name
  security_group_ids   = [aws_security_group.memcached.id]

  az_mode                      = "cross-az"
  preferred_availability_zones = [for i in range(var.memcached_nodes) : local.azs[i % length(local.azs)]]

  apply_immediately = false
}
