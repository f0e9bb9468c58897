# RDS MySQL 8: a Multi-AZ primary (synchronous standby in another zone) and
# db_replica_count read replicas in zones other than the primary's.
#
# Failover (primary or its zone lost, or a reboot with failover) takes about
# 1-2 minutes and moves the endpoint's DNS name to the standby. Meanwhile
# writes get 503 quickly (ORIGIN_QUERY_TIMEOUT 1s, DSN readTimeout=2s), reads keep
# working from memcached and the replicas. The origin follows the DNS move
# because broken connections are dropped, rejectReadOnly=true drops a
# connection that lands on a read-only server, and ORIGIN_MYSQL_CONN_MAX_LIFETIME
# (3m) retires every pooled connection, so none outlives the move for long.
# A replica follows the new primary by itself.
#
# The password: random_password, kept in Secrets Manager. The origins read it
# at boot with their instance role (it is not in the launch template's
# user_data). It is also in the Terraform state: keep the state encrypted.

locals {
  db_family = "mysql${var.db_engine_version}"

  # Zones for the replicas: every zone but the primary's (known once the
  # primary exists: AWS picks a Multi-AZ primary's zone).
  replica_azs = [for az in local.azs : az if az != aws_db_instance.primary.availability_zone]
}

resource "random_password" "db" {
  length  = 32
  special = false # letters and digits only: nothing to escape in a DSN
}

resource "aws_secretsmanager_secret" "db_password" {
  name_prefix             = "${var.name}-db-password-"
  description             = "Password of the ${var.db_username} user on ${var.name}'s RDS MySQL (the origin's DSN)"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "db_password" {
  secret_id     = aws_secretsmanager_secret.db_password.id
  secret_string = random_password.db.result
}

resource "aws_db_subnet_group" "main" {
  name       = "${var.name}-db"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "mysql" {
  name_prefix = "${var.name}-${replace(local.db_family, ".", "")}-"
  family      = local.db_family
  description = "edgecache: utf8mb4, UTC, row-based binlog, triggers by the app's user"

  parameter {
    name  = "character_set_server"
    value = "utf8mb4"
  }
  parameter {
    name  = "collation_server"
    value = "utf8mb4_unicode_ci"
  }
  parameter {
    name  = "time_zone"
    value = "UTC"
  }
  # The origin's migrations create triggers (the invalidation log). With the
  # binary log on, which backups and replicas need, MySQL lets only SUPER
  # create them unless this is 1, and the RDS master user has no SUPER. It
  # is safe with row-based logging: replicas apply the rows the triggers
  # wrote instead of running the triggers again.
  parameter {
    name  = "log_bin_trust_function_creators"
    value = "1"
  }
  parameter {
    name  = "binlog_format"
    value = "ROW"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "primary" {
  identifier     = "${var.name}-primary"
  engine         = "mysql"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name  = var.db_name
  username = var.db_username
  password = random_password.db.result
  port     = 3306

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.mysql.name
  publicly_accessible    = false

  storage_type          = "gp3"
  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_encrypted     = true

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.db_deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-primary-final"

  auto_minor_version_upgrade = true
  apply_immediately          = false
}

resource "aws_db_instance" "replica" {
  count = var.db_replica_count

  identifier          = "${var.name}-replica-${count.index + 1}"
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = var.db_replica_instance_class
  availability_zone   = local.replica_azs[count.index % length(local.replica_azs)]

  multi_az               = false
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.mysql.name
  publicly_accessible    = false

  storage_type          = "gp3"
  max_allocated_storage = var.db_max_allocated_storage
  storage_encrypted     = true

  backup_retention_period = 0
  deletion_protection     = var.db_deletion_protection
  skip_final_snapshot     = true

  auto_minor_version_upgrade = true
  apply_immediately          = false

  lifecycle {
    # After a failover the primary's zone changes; that must not replace the
    # replicas on the next apply.
    ignore_changes = [availability_zone]
  }
}
