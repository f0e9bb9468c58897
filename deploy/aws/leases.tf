# Invalidation leases (README "Leases"): a proxy serves its in-process copy
# (L1) without asking memcached while it holds a lease; every write, on a
# proxy or in the invalidator beside each origin, tells each lease holder
# what moved, on the holder's admin port, with a shared secret. The secret
# is generated here and kept in Secrets Manager; each instance reads it
# with its role at boot. Each proxy advertises its private IP and admin
# port (PROXY_PEER_ADVERTISE, from the instance metadata): the admin
# listener binds 0.0.0.0, which peers cannot use.

resource "random_password" "peer" {
  length  = 40
  special = false # it goes in a header and an environment file as it is
}

resource "aws_secretsmanager_secret" "peer_secret" {
  name_prefix             = "${var.name}-peer-secret-"
  description             = "edgecache: PROXY_PEER_SECRET and INVALIDATOR_PEER_SECRET (invalidation leases)"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "peer_secret" {
  secret_id     = aws_secretsmanager_secret.peer_secret.id
  secret_string = random_password.peer.result
}

data "aws_iam_policy_document" "peer_secret" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.peer_secret.arn]
  }
}

resource "aws_iam_role_policy" "proxy_peer_secret" {
  name   = "read-peer-secret"
  role   = aws_iam_role.proxy.id
  policy = data.aws_iam_policy_document.peer_secret.json
}

resource "aws_iam_role_policy" "origin_peer_secret" {
  name   = "read-peer-secret"
  role   = aws_iam_role.origin.id
  policy = data.aws_iam_policy_document.peer_secret.json
}

# proxy -> proxy and invalidator (origin instances) -> proxy, on the admin
# port: POST /lease/invalidate.

resource "aws_vpc_security_group_ingress_rule" "proxy_admin_from_proxy" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "Lease invalidations from the other proxies"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.proxy.id
}

resource "aws_vpc_security_group_egress_rule" "proxy_to_proxy_admin" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "Lease invalidations to the other proxies"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.proxy.id
}

resource "aws_vpc_security_group_ingress_rule" "proxy_admin_from_origin" {
  security_group_id            = aws_security_group.proxy.id
  description                  = "Lease invalidations from the invalidator beside each origin"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.origin.id
}

resource "aws_vpc_security_group_egress_rule" "origin_to_proxy_admin" {
  security_group_id            = aws_security_group.origin.id
  description                  = "Lease invalidations from the invalidator to the proxies"
  ip_protocol                  = "tcp"
  from_port                    = var.proxy_admin_port
  to_port                      = var.proxy_admin_port
  referenced_security_group_id = aws_security_group.proxy.id
}
