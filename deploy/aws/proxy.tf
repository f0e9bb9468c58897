# The proxies: an Auto Scaling group over every private subnet, registered in
# the public ALB's target group, scaled by target tracking on average CPU
# (bench plan sizes proxies by CPU: requests per core at -utilisation).

locals {
  # systemd's TimeoutStopSec: the drain delay, then at most the shutdown
  # timeout for in-flight requests, plus room for flushing logs. Past it
  # systemd sends SIGKILL.
  proxy_stop_timeout = var.proxy_drain_delay_seconds + var.proxy_shutdown_timeout_seconds + 15

  proxy_user_data = templatefile("${path.module}/templates/proxy-user-data.sh.tftpl", {
    proxy_port       = var.proxy_port
    admin_port       = var.proxy_admin_port
    origins          = "http://${aws_lb.origin.dns_name}:${var.origin_port}"
    memcached        = join(",", [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"])
    drain_delay      = var.proxy_drain_delay_seconds
    shutdown_timeout = var.proxy_shutdown_timeout_seconds
    stop_timeout     = local.proxy_stop_timeout
    extra_env        = var.proxy_extra_env
    region           = var.region
    peer_secret_arn  = aws_secretsmanager_secret.peer_secret.arn
    lease_duration   = var.lease_duration
    # The ALB's addresses are in the VPC: the client is the X-Forwarded-For
    # address it reports (access log, per-client budgets).
    trusted_proxies = var.vpc_cidr
  })
}

resource "aws_launch_template" "proxy" {
  name_prefix            = "${var.name}-proxy-"
  image_id               = var.ami_id
  instance_type          = var.proxy_instance_type
  vpc_security_group_ids = [aws_security_group.proxy.id]
  update_default_version = true
  user_data              = base64encode(local.proxy_user_data)

  iam_instance_profile {
    name = aws_iam_instance_profile.proxy.name
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
    tags          = { Name = "${var.name}-proxy", Role = "proxy" }
  }

  lifecycle {
    precondition {
      condition     = var.proxy_deregistration_delay > var.proxy_drain_delay_seconds + 13 && var.proxy_deregistration_delay < 300
      error_message = "proxy_deregistration_delay must exceed proxy_drain_delay_seconds + 13 s (PROXY_ORIGIN_TIMEOUT + PROXY_COALESCE_WAIT) and stay below 300 s."
    }
    precondition {
      condition = var.proxy_drain_delay_seconds > (
        aws_lb_target_group.proxy.health_check[0].interval * aws_lb_target_group.proxy.health_check[0].unhealthy_threshold
        + aws_lb_target_group.proxy.health_check[0].timeout
      )
      error_message = "proxy_drain_delay_seconds must exceed the time the ALB takes to mark a target unhealthy (interval × unhealthy_threshold + timeout)."
    }
    precondition {
      condition     = var.alb_idle_timeout < 75
      error_message = "alb_idle_timeout must stay below PROXY_IDLE_TIMEOUT and ORIGIN_IDLE_TIMEOUT (75 s)."
    }
    precondition {
      condition     = alltrue([for k in keys(var.proxy_extra_env) : can(regex("^PROXY_[A-Z0-9_]+$", k))])
      error_message = "proxy_extra_env keys must be PROXY_* variable names."
    }
  }
}

resource "aws_autoscaling_group" "proxy" {
  name_prefix         = "${var.name}-proxy-"
  min_size            = var.proxy_min_size
  max_size            = var.proxy_max_size
  vpc_zone_identifier = aws_subnet.private[*].id
  target_group_arns   = [aws_lb_target_group.proxy.arn]

  health_check_type         = var.proxy_asg_health_check_type
  health_check_grace_period = 90
  default_instance_warmup   = 60

  launch_template {
    id      = aws_launch_template.proxy.id
    version = aws_launch_template.proxy.latest_version
  }

  # A new launch template version (new AMI, new memcached seeds, new
  # settings) replaces the instances a few at a time. Each one leaves the
  # target group first (deregistration delay), then gets SIGTERM.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 90
    }
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-proxy"
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity] # owned by target tracking
  }
}

resource "aws_autoscaling_policy" "proxy_cpu" {
  name                   = "${var.name}-proxy-cpu"
  autoscaling_group_name = aws_autoscaling_group.proxy.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
    target_value = var.proxy_cpu_target
  }
}
