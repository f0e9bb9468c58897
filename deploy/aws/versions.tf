# Terraform and provider versions. No provider lock file is committed yet:
# the first `terraform init` writes .terraform.lock.hcl; commit it then.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State holds the generated database password (random_password): keep it in
  # an encrypted, access-controlled backend, for example
  #   backend "s3" { bucket = "..." key = "edgecache/terraform.tfstate" region = "..." encrypt = true }
  # configured with `terraform init -backend-config=...`.
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = var.name, ManagedBy = "terraform" }, var.tags)
  }
}
