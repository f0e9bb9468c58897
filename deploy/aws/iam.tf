# Instance roles. Both may be reached with SSM Session Manager (no SSH, no
# key pairs, no port 22). Only the origins may read the database password.

data "aws_partition" "current" {}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "proxy" {
  name_prefix        = "${var.name}-proxy-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "proxy_ssm" {
  role       = aws_iam_role.proxy.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "proxy" {
  name_prefix = "${var.name}-proxy-"
  role        = aws_iam_role.proxy.name
}

resource "aws_iam_role" "origin" {
  name_prefix        = "${var.name}-origin-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "origin_ssm" {
  role       = aws_iam_role.origin.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "origin_db_secret" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.db_password.arn]
  }
}

resource "aws_iam_role_policy" "origin_db_secret" {
  name   = "read-db-password"
  role   = aws_iam_role.origin.id
  policy = data.aws_iam_policy_document.origin_db_secret.json
}

resource "aws_iam_instance_profile" "origin" {
  name_prefix = "${var.name}-origin-"
  role        = aws_iam_role.origin.name
}
