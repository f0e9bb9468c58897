# VPC over local.azs (3 zones by default): one public subnet per zone for the
# ALB and the NAT gateways, one private subnet per zone for the instances,
# memcached and the database. Private subnets reach the internet (AWS APIs:
# Secrets Manager, SSM) only through NAT.

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = length(var.azs) > 0 ? var.azs : slice(data.aws_availability_zones.available.names, 0, var.az_count)

  nat_count = var.nat_gateway_per_az ? length(local.azs) : 1
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # RDS and ElastiCache endpoints are DNS names

  tags = { Name = var.name }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id            = aws_vpc.main.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)

  tags = { Name = "${var.name}-public-${local.azs[count.index]}", Tier = "public" }
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id            = aws_vpc.main.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, 8 + count.index)

  tags = { Name = "${var.name}-private-${local.azs[count.index]}", Tier = "private" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.main.id
}

resource "aws_route_table_association" "public" {
  count = length(local.azs)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count  = local.nat_count
  domain = "vpc"
  tags   = { Name = "${var.name}-nat-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_nat_gateway" "main" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${var.name}-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.main]
}

# One private route table per zone, each through its own zone's NAT gateway
# (or the single one), so that losing a zone leaves the others' egress alone.
resource "aws_route_table" "private" {
  count = length(local.azs)

  vpc_id = aws_vpc.main.id
  tags   = { Name = "${var.name}-private-${local.azs[count.index]}" }
}

resource "aws_route" "private_nat" {
  count = length(local.azs)

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.main[var.nat_gateway_per_az ? count.index : 0].id
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---- security groups ------------------------------------------------------
#
# Least privilege, group to group. The only ingress from the internet is the
# public ALB's listener ports. Edges:
#   internet  -> alb        80, 443
#   alb       -> proxy      proxy_port (traffic), proxy_admin_port (/readyz health check)
#   proxy     -> origin_alb origin_port
#   origin_alb-> origin     origin_port (traffic and /readyz)
#   origin    -> db         3306
#   proxy     -> memcached  11211
#   origin    -> memcached  11211 (the invalidator, beside each origin)
#   proxy     -> proxy      proxy_admin_port (lease invalidations; leases.tf)
#   origin    -> proxy      proxy_admin_port (the invalidator's lease invalidations)
# Instances may also leave on 443 (AWS APIs through NAT: Secrets Manager, SSM).

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "Public ALB: HTTP/HTTPS from the internet, to the proxies"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "proxy" {
  name        = "${var.name}-proxy"
  description = "Proxies: traffic and health checks from the public ALB only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-proxy" }
}

resource "aws_security_group" "origin_alb" {
  name        = "${var.name}-origin-alb"
  description = "Internal origin ALB: from the proxies, to the origins"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-origin-alb" }
}

resource "aws_security_group" "origin" {
  name        = "${var.name}-origin"
  description = "Origins: from the internal origin ALB only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-origin" }
}

resource "aws_security_group" "memcached" {
  name        = "${var.name}-memcached"
  description = "ElastiCache for Memcached: from the proxies only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-memcached" }
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "RDS MySQL: from the origins only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-db" }
}

# internet -> public ALB

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_proxy" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Requests to the proxies"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_port
  to_port                      = var.proxy_port
  referenced_security_group_id = aws_security_group.proxy.id
}

resource "aws_vpc_security_group_egress_rule" "alb_to_proxy_admin" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Health checks (/readyz) on the proxies' admin port"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.proxy.id
}

# public ALB -> proxy

resource "aws_vpc_security_group_ingress_rule" "proxy_from_alb" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "Client traffic from the public ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_port
  to_port                      = var.proxy_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "proxy_admin_from_alb" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "ALB health checks on the admin port (/readyz)"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "proxy_admin_from_monitoring" {
  for_each = toset(var.monitoring_security_group_ids)

  security_group_id            = aws_security_group.proxy.id
  description                  = "Metrics and pprof from monitoring"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_origin_alb" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "Reads on a miss and writes, to the internal origin ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.origin_port
  to_port                      = var.origin_port
  referenced_security_group_id = aws_security_group.origin_alb.id
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_memcached" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "The memcached pool"
  ip_protocol                  = "tcp"
  from_port                    = 11211
  to_port                      = 11211
  referenced_security_group_id = aws_security_group.memcached.id
}

resource "aws_vpc_security_group_egress_rule" "proxy_https" {
  security_group_id = aws_security_group.proxy.id
  description       = "AWS APIs (SSM, CloudWatch) through NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# proxy -> internal origin ALB -> origin

resource "aws_vpc_security_group_ingress_rule" "origin_alb_from_proxy" {
  security_group_id            = aws_security_group.origin_alb.id
  description                  = "Origin requests from the proxies"
  ip_protocol                  = "tcp"
  from_port                    = var.origin_port
  to_port                      = var.origin_port
  referenced_security_group_id = aws_security_group.proxy.id
}

resource "aws_vpc_security_group_egress_rule" "origin_alb_to_origin" {
  security_group_id            = aws_security_group.origin_alb.id
  description                  = "Requests and /readyz health checks to the origins"
  ip_protocol                  = "tcp"
  from_port                    = var.origin_port
  to_port                      = var.origin_port
  referenced_security_group_id = aws_security_group.origin.id
}

resource "aws_vpc_security_group_ingress_rule" "origin_from_origin_alb" {
  security_group_id            = aws_security_group.origin.id
  description                  = "Requests and health checks from the internal origin ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.origin_port
  to_port                      = var.origin_port
  referenced_security_group_id = aws_security_group.origin_alb.id
}

resource "aws_vpc_security_group_ingress_rule" "origin_from_monitoring" {
  for_each = toset(var.monitoring_security_group_ids)

  security_group_id            = aws_security_group.origin.id
  description                  = "Metrics from monitoring"
  ip_protocol                  = "tcp"
  from_port                    = var.origin_port
  to_port                      = var.origin_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "origin_to_db" {
  security_group_id            = aws_security_group.origin.id
  description                  = "MySQL primary and replicas"
  ip_protocol                  = "tcp"
  from_port                    = 3306
  to_port                      = 3306
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "origin_https" {
  security_group_id = aws_security_group.origin.id
  description       = "AWS APIs (Secrets Manager, SSM, CloudWatch) through NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# origin -> database; proxy -> memcached

resource "aws_vpc_security_group_ingress_rule" "db_from_origin" {
  security_group_id            = aws_security_group.db.id
  description                  = "MySQL from the origins"
  ip_protocol                  = "tcp"
  from_port                    = 3306
  to_port                      = 3306
  referenced_security_group_id = aws_security_group.origin.id
}

resource "aws_vpc_security_group_ingress_rule" "memcached_from_proxy" {
  security_group_id            = aws_security_group.memcached.id
  description                  = "memcached from the proxies"
  ip_protocol                  = "tcp"
  from_port                    = 11211
  to_port                      = 11211
  referenced_security_group_id = aws_security_group.proxy.id
}

# The invalidator runs on the origin instances (one leads, elected in the
# database) and moves group values in memcached.

resource "aws_vpc_security_group_egress_rule" "origin_to_memcached" {
  security_group_id            = aws_security_group.origin.id
  description                  = "The memcached pool (invalidator)"
  ip_protocol                  = "tcp"
  from_port                    = 11211
  to_port                      = 11211
  referenced_security_group_id = aws_security_group.memcached.id
}

resource "aws_vpc_security_group_ingress_rule" "memcached_from_origin" {
  security_group_id            = aws_security_group.memcached.id
  description                  = "memcached from the invalidators on the origin instances"
  ip_protocol                  = "tcp"
  from_port                    = 11211
  to_port                      = 11211
  referenced_security_group_id = aws_security_group.origin.id
}
