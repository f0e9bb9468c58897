output "alb_dns_name" {
  description = "Public ALB DNS name: point the service's DNS record (a CNAME or Route 53 alias) here."
  value       = aws_lb.public.dns_name
}

output "url" {
  description = "Base URL of the service through the public ALB."
  value       = var.certificate_arn == "" ? "http://${aws_lb.public.dns_name}" : "https://${aws_lb.public.dns_name}"
}

output "origin_url" {
  description = "PROXY_ORIGINS as the proxies get it: the internal origin ALB."
  value       = "http://${aws_lb.origin.dns_name}:${var.origin_port}"
}

output "memcached_endpoints" {
  description = "PROXY_MEMCACHED as the proxies get it: the node endpoints in node-id order, the seeds of the membership."
  value       = [for n in aws_elasticache_cluster.memcached.cache_nodes : "${n.address}:${n.port}"]
}

output "memcached_configuration_endpoint" {
  description = "INVALIDATOR_MEMCACHED_DISCOVERY as the invalidators get it: the cluster's configuration endpoint, where the decider learns the node list (auto discovery)."
  value       = aws_elasticache_cluster.memcached.configuration_endpoint
}

output "rds_primary_endpoint" {
  description = "RDS primary endpoint (host:port); after a Multi-AZ failover the same name points at the new primary."
  value       = aws_db_instance.primary.endpoint
}

output "rds_replica_endpoints" {
  description = "RDS read replica endpoints (host:port)."
  value       = aws_db_instance.replica[*].endpoint
}

output "db_password_secret_arn" {
  description = "Secrets Manager secret holding the database password."
  value       = aws_secretsmanager_secret.db_password.arn
}

output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.main.id
}

output "proxy_asg_name" {
  description = "Proxy Auto Scaling group (for instance refreshes and scaling)."
  value       = aws_autoscaling_group.proxy.name
}

output "origin_asg_name" {
  description = "Origin Auto Scaling group."
  value       = aws_autoscaling_group.origin.name
}
