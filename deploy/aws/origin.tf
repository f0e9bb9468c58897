# The origins: an Auto Scaling group over every private subnet behind the
# internal origin ALB, scaled by target tracking on average CPU.
#
# The Auto Scaling group's health check type is EC2, not ELB: the origin's
# /readyz fails while the primary database is unreachable, which during an
# RDS failover (1-2 min) is true of every origin at once. The ALB then fails
# open (all targets unhealthy: send to all) and writes get a quick 503; with
# ELB health checks the group would also replace every origin mid-failover.

locals {
  # systemd's TimeoutStopSec: the drain delay, then at most the shutdown
  # timeout for in-flight requests (counted after it), and a margin.
  origin_stop_timeout = var.origin_drain_delay_seconds + var.origin_shutdown_timeout_seconds + 15

  origin_user_data = templatefile("${path.module}/templates/origin-user-data.sh.tftpl", {
    region            = var.region
    origin_port       = var.origin_port
    secret_arn        = aws_secretsmanager_secret.db_password.arn
    db_user           = var.db_username
    db_name           = var.db_name
    dsn_options       = var.db_dsn_options
    primary_endpoint  = aws_db_instance.primary.endpoint
    replica_endpoints = aws_db_instance.replica[*].endpoint
    drain_delay       = var.origin_drain_delay_seconds
    shutdown_timeout  = var.origin_shutdown_timeout_seconds
    stop_timeout      = local.origin_stop_timeout
    extra_env         = var.origin_extra_env
    memcached         = join(",", [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"])
    # The decider takes the desired nodes from the cluster (cache.tf).
    memcached_discovery = aws_elasticache_cluster.memcached.configuration_endpoint
    peer_secret_arn     = aws_secretsmanager_secret.peer_secret.arn
    lease_duration      = var.lease_duration
  })
}

resource "aws_launch_template" "origin" {
  name_prefix            = "${var.name}-origin-"
  image_id               = var.ami_id
  instance_type          = var.origin_instance_type
  vpc_security_group_ids = [aws_security_group.origin.id]
  update_default_version = true
  user_data              = base64encode(local.origin_user_data)

  iam_instance_profile {
    name = aws_iam_instance_profile.origin.name
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-origin", Role = "origin" }
  }

  lifecycle {
    precondition {
      condition     = var.origin_shutdown_timeout_seconds > 0
      error_message = "origin_shutdown_timeout_seconds must be positive."
    }
    precondition {
      condition     = var.origin_deregistration_delay > var.origin_drain_delay_seconds && var.origin_deregistration_delay < 300
      error_message = "origin_deregistration_delay must exceed origin_drain_delay_seconds and stay below 300 s."
    }
    precondition {
      condition     = alltrue([for k in keys(var.origin_extra_env) : can(regex("^ORIGIN_[A-Z0-9_]+$", k))])
      error_message = "origin_extra_env keys must be ORIGIN_* variable names."
    }
  }

  # The database password is fetched at boot; the secret's value must exist first.
  depends_on = [aws_secretsmanager_secret_version.db_password, aws_iam_role_policy.origin_db_secret]
}

resource "aws_autoscaling_group" "origin" {
  name_prefix         = "${var.name}-origin-"
  min_size            = var.origin_min_size
  max_size            = var.origin_max_size
  vpc_zone_identifier = aws_subnet.private[*].id
  target_group_arns   = [aws_lb_target_group.origin.arn]

  health_check_type         = "EC2"
  health_check_grace_period = 120
  default_instance_warmup   = 60

  launch_template {
    id      = aws_launch_template.origin.id
    version = aws_launch_template.origin.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 90
    }
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-origin"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity] # owned by target tracking
  }
}

resource "aws_autoscaling_policy" "origin_cpu" {
  name                   = "${var.name}-origin-cpu"
  autoscaling_group_name = aws_autoscaling_group.origin.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
    target_value = var.origin_cpu_target
  }
}
