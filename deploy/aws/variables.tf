# Inputs. Every one has a default except ami_id: the AMI must carry the
# edgecache binaries (see README.md, "The AMI").

variable "name" {
  description = "Prefix of every resource name, and the Project tag."
  type        = string
  default     = "edgecache"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2 to 21 characters, lower-case letters, digits and '-', starting with a letter (it prefixes RDS and ElastiCache identifiers)."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "az_count" {
  description = "How many availability zones to spread over when azs is empty: the first az_count zones of the region. Every tier survives losing one zone, so at least 2; 3 by default (bench plan -azs)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2
    error_message = "az_count must be at least 2: each tier must survive losing one zone."
  }
}

variable "azs" {
  description = "Explicit availability zone names (overrides az_count); empty: the first az_count available zones of the region."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.azs) == 0 || length(var.azs) >= 2
    error_message = "azs: give at least 2 zones, or none to use az_count."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; public and private /20 subnets are cut from it (up to 8 zones)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone (true: losing a zone does not cut the others' egress) or a single one (false: cheaper)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# ---- instances ----------------------------------------------------------

variable "ami_id" {
  description = "AMI with /usr/local/bin/proxy, /usr/local/bin/origin (from `make build`, built for the instance types' architecture), systemd and the AWS CLI v2 (Amazon Linux 2023 has both)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "proxy_instance_type" {
  description = "Proxy instance type. 2 vCPUs matches bench plan's default -cores 2. x86_64; use c7g.large (arm64) with an arm64 AMI."
  type        = string
  default     = "c7i.large"
}

variable "proxy_min_size" {
  description = "Fewest proxy instances (at least one per zone)."
  type        = number
  default     = 3
}

variable "proxy_max_size" {
  description = "Most proxy instances; at least bench plan's \"proxy instances\"."
  type        = number
  default     = 12
}

variable "proxy_cpu_target" {
  description = "Target average CPU % of the proxy group (target tracking); bench plan -utilisation as a percentage."
  type        = number
  default     = 60
}

variable "proxy_asg_health_check_type" {
  description = "ELB: the Auto Scaling group replaces a proxy that fails the target group's /readyz (it fails only when the instance reaches neither memcached nor an origin, or while draining). EC2: only dead instances are replaced."
  type        = string
  default     = "ELB"

  validation {
    condition     = contains(["ELB", "EC2"], var.proxy_asg_health_check_type)
    error_message = "proxy_asg_health_check_type must be ELB or EC2."
  }
}

variable "origin_instance_type" {
  description = "Origin instance type (2 vCPUs matches bench plan -cores 2)."
  type        = string
  default     = "c7i.large"
}

variable "origin_min_size" {
  description = "Fewest origin instances (at least one per zone)."
  type        = number
  default     = 3
}

variable "origin_max_size" {
  description = "Most origin instances; at least bench plan's \"origin instances\"."
  type        = number
  default     = 9
}

variable "origin_cpu_target" {
  description = "Target average CPU % of the origin group (target tracking)."
  type        = number
  default     = 60
}

variable "monitoring_security_group_ids" {
  description = "Security groups (for example a Prometheus host's) allowed to reach the proxy's admin port (/metrics, pprof) and the origin's port. Never a CIDR: the admin listener stays private."
  type        = list(string)
  default     = []
}

variable "proxy_extra_env" {
  description = "Extra PROXY_* variables for every proxy (for example { PROXY_L1_BYTES = \"134217728\" }); written after the ones set here, so they win."
  type        = map(string)
  default     = {}
}

variable "origin_extra_env" {
  description = "Extra ORIGIN_* variables for every origin (for example { ORIGIN_MYSQL_MAX_CONNS = \"64\" })."
  type        = map(string)
  default     = {}
}

# ---- ports and timings ----------------------------------------------------

variable "proxy_port" {
  description = "Proxy client port (PROXY_LISTEN=0.0.0.0:<port>); the ALB forwards to it."
  type        = number
  default     = 8080
}

variable "proxy_admin_port" {
  description = "Proxy admin port (PROXY_ADMIN_LISTEN=0.0.0.0:<port>): /readyz for the ALB health check, /metrics, pprof, purge. Reachable only from the ALB's and the monitoring security groups."
  type        = number
  default     = 8082
}

variable "origin_port" {
  description = "Origin port (ORIGIN_LISTEN=0.0.0.0:<port>), also the internal origin ALB's listener port."
  type        = number
  default     = 8081
}

variable "alb_idle_timeout" {
  description = "Idle timeout of both ALBs, seconds. Must stay below PROXY_IDLE_TIMEOUT and ORIGIN_IDLE_TIMEOUT (75 s by default) or clients see 502s."
  type        = number
  default     = 60
}

variable "proxy_drain_delay_seconds" {
  description = "PROXY_DRAIN_DELAY on AWS: how long /readyz fails after SIGTERM before the listener closes. Longer than the health check needs to mark a target unhealthy (2 × 10 s + 5 s timeout)."
  type        = number
  default     = 30
}

variable "proxy_shutdown_timeout_seconds" {
  description = "PROXY_SHUTDOWN_TIMEOUT: longest wait for in-flight requests after the drain delay."
  type        = number
  default     = 30
}

variable "proxy_deregistration_delay" {
  description = "Target group deregistration delay for proxies, seconds: above PROXY_DRAIN_DELAY + the longest request (PROXY_ORIGIN_TIMEOUT 10 s + PROXY_COALESCE_WAIT 3 s), far below the 300 s default."
  type        = number
  default     = 45
}

variable "origin_drain_delay_seconds" {
  description = "ORIGIN_DRAIN_DELAY on AWS (same reasoning as proxy_drain_delay_seconds)."
  type        = number
  default     = 30
}

variable "origin_shutdown_timeout_seconds" {
  description = "ORIGIN_SHUTDOWN_TIMEOUT: longest wait for in-flight requests after the drain delay."
  type        = number
  default     = 30
}

variable "origin_deregistration_delay" {
  description = "Target group deregistration delay for origins, seconds."
  type        = number
  default     = 45
}

variable "certificate_arn" {
  description = "ACM certificate ARN for an HTTPS listener on 443; empty: HTTP on 80 only. With a certificate, 80 redirects to 443."
  type        = string
  default     = ""
}

variable "alb_deletion_protection" {
  description = "Deletion protection on the public ALB."
  type        = bool
  default     = false
}

# ---- memcached ------------------------------------------------------------

variable "memcached_node_type" {
  description = "ElastiCache node type; cache.r7g.large (13.07 GiB) is bench plan's -memcached-node-bytes default."
  type        = string
  default     = "cache.r7g.large"
}

variable "memcached_nodes" {
  description = "Memcached nodes, spread over the zones (bench plan's \"memcached nodes\"). Losing one loses its keys: no replication."
  type        = number
  default     = 3

  validation {
    condition     = var.memcached_nodes >= 1 && var.memcached_nodes <= 40
    error_message = "memcached_nodes: 1 to 40 (ElastiCache for Memcached limit)."
  }
}

variable "memcached_engine_version" {
  description = "Memcached engine version."
  type        = string
  default     = "1.6.22"
}

# ---- database -------------------------------------------------------------

variable "db_engine_version" {
  description = "RDS MySQL major.minor version (8.0 or 8.4); the parameter group family follows it."
  type        = string
  default     = "8.4"
}

variable "db_instance_class" {
  description = "RDS instance class of the primary (and its Multi-AZ standby)."
  type        = string
  default     = "db.r7g.large"
}

variable "db_replica_instance_class" {
  description = "RDS instance class of the read replicas."
  type        = string
  default     = "db.r7g.large"
}

variable "db_replica_count" {
  description = "Read replicas (bench plan's \"read replicas\"), spread over the zones other than the primary's."
  type        = number
  default     = 1
}

variable "db_allocated_storage" {
  description = "Initial gp3 storage, GiB."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling, GiB (36 TB of posts in 3 years needs partitioning long before: see README)."
  type        = number
  default     = 2000
}

variable "db_backup_retention_days" {
  description = "Automated backup retention, days (must be > 0: replicas need it, and so does point-in-time recovery)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1
    error_message = "db_backup_retention_days must be at least 1."
  }
}

variable "db_deletion_protection" {
  description = "Deletion protection on the primary and replicas; set false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "edgecache"
}

variable "db_username" {
  description = "Master user name, used by the origin."
  type        = string
  default     = "edgecache"
}

variable "db_dsn_options" {
  description = "go-sql-driver/mysql DSN options of the primary and replica DSNs: the origin's default set (origin/config.go)."
  type        = string
  default     = "parseTime=true&loc=UTC&interpolateParams=true&timeout=2s&readTimeout=2s&writeTimeout=5s&charset=utf8mb4&collation=utf8mb4_unicode_ci&rejectReadOnly=true"
}

variable "lease_duration" {
  description = "Invalidation lease duration (PROXY_LEASE_DURATION on the proxies, INVALIDATOR_LEASE_DURATION on the invalidators): how long one renewal lets a proxy serve L1 without asking memcached, and the longest a write waits for a proxy that does not answer."
  type        = string
  default     = "1s"
}
