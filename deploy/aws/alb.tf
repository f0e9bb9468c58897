# The public, internet-facing ALB in front of the proxies.
#
# Timings (AWS's defaults, and what the drain needs):
# - Health check every 10 s, 2 failures = unhealthy, 2 successes = healthy.
#   The defaults (30 s, 5 healthy) take 60 s to notice a draining proxy and
#   2.5 min to admit a new one. With these, a proxy that got SIGTERM is out of
#   rotation within about 20 s, inside PROXY_DRAIN_DELAY (30 s), while
#   /readyz already answers 503 and requests are still served.
# - The check hits /readyz on the proxy's admin port (not the traffic port):
#   that is where readiness lives. The port is reachable only from this ALB's
#   security group.
# - deregistration_delay 45 s instead of 300 s: above PROXY_DRAIN_DELAY plus
#   the longest request (PROXY_ORIGIN_TIMEOUT 10 s + PROXY_COALESCE_WAIT 3 s),
#   so in-flight requests finish, and scale-in or a deploy does not wait 5 min.
# - idle_timeout 60 s, below PROXY_IDLE_TIMEOUT (75 s): the ALB, not the
#   proxy, closes idle keep-alive connections, so the ALB never sends a
#   request on a connection the proxy has just closed (a 502).
# - When every target is unhealthy the ALB sends to all of them ("fails
#   open"); the proxy's /readyz fails only while draining or when the
#   instance reaches neither memcached nor any origin, so a fleet-wide
#   dependency problem does not empty the target group.

resource "aws_lb" "public" {
  name               = "${var.name}-public"
  internal           = false
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = aws_subnet.public[*].id

  idle_timeout               = var.alb_idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  enable_http2               = true
}

resource "aws_lb_target_group" "proxy" {
  name                 = "${var.name}-proxy"
  port                 = var.proxy_port
  protocol             = "HTTP"
  vpc_id               = aws_vpc.main.id
  target_type          = "instance"
  deregistration_delay = var.proxy_deregistration_delay

  health_check {
    enabled             = true
    path                = "/readyz"
    port                = tostring(var.proxy_admin_port)
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.public.arn
  port              = 80
  protocol          = "HTTP"

  # Without a certificate, serve on 80; with one, redirect 80 to 443.
  default_action {
    type             = var.certificate_arn == "" ? "forward" : "redirect"
    target_group_arn = var.certificate_arn == "" ? aws_lb_target_group.proxy.arn : null

    dynamic "redirect" {
      for_each = var.certificate_arn == "" ? [] : [1]
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn == "" ? 0 : 1

  load_balancer_arn = aws_lb.public.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.proxy.arn
  }
}

# The internal ALB in front of the origins: PROXY_ORIGINS is its one URL, it
# spreads the proxies' misses and writes over the healthy origins, and the
# origin Auto Scaling group can grow and shrink behind it without touching the
# proxies. Same health check timings as above, on the origin's own /readyz.
# Its idle timeout (60 s) sits between PROXY_ORIGIN_IDLE_CONN_TIME (4 s: the
# proxy closes its idle origin connections first) and ORIGIN_IDLE_TIMEOUT
# (75 s).

resource "aws_lb" "origin" {
  name               = "${var.name}-origin"
  internal           = true
  load_balancer_type = "application"
  security_groups    = [aws_security_group.origin_alb.id]
  subnets            = aws_subnet.private[*].id

  idle_timeout               = var.alb_idle_timeout
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "origin" {
  name                 = "${var.name}-origin"
  port                 = var.origin_port
  protocol             = "HTTP"
  vpc_id               = aws_vpc.main.id
  target_type          = "instance"
  deregistration_delay = var.origin_deregistration_delay

  health_check {
    enabled             = true
    path                = "/readyz"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "origin" {
  load_balancer_arn = aws_lb.origin.arn
  port              = var.origin_port
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.origin.arn
  }
}
