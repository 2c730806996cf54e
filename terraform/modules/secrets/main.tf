# Secrets Manager entries the tasks read at start (ECS `secrets`), encrypted
# with their own KMS key. Terraform writes the ones it can compute (database
# and Redis URLs from the generated passwords, the CloudFront signing key);
# the Stripe key is created empty and set by an operator
# (docs/deploy.md, "Secrets to set").

resource "aws_kms_key" "this" {
  description             = "${var.name}: Secrets Manager"
  deletion_window_in_days = 30
  enable_key_rotation     = true

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-secrets"
  target_key_id = aws_kms_key.this.key_id
}

locals {
  # Secret names are plain strings: instance keys must not derive from the
  # sensitive values.
  generated_names = [
    "database-url",
    "database-url-api",
    "database-api-password",
    "redis-url",
    "temporal-db-password",
    "cloudfront-signing-key",
  ]

  generated = {
    # The tables' owner: migrations and the control-plane worker.
    "database-url" = "postgres://${var.database.owner_username}:${var.database.owner_password}@${var.database.host}:${var.database.port}/${var.database.name}?sslmode=require"
    # The API's login (a member of easel_api, no table ownership): the API
    # works under row-level security. The role is created by the
    # db-bootstrap task.
    "database-url-api"       = "postgres://${var.database.api_username}:${var.database.api_password}@${var.database.host}:${var.database.port}/${var.database.name}?sslmode=require"
    "database-api-password"  = var.database.api_password
    "redis-url"              = "rediss://:${var.redis.auth_token}@${var.redis.host}:${var.redis.port}/0"
    "temporal-db-password"   = var.temporal_db_password
    "cloudfront-signing-key" = var.cloudfront_private_key_pem
  }

  # Set by hand after apply.
  manual = {
    "stripe-secret-key"     = "Stripe secret key (sk_live_...): subscriptions, customers, renewals"
    "stripe-webhook-secret" = "Signing secret (whsec_...) of the Stripe webhook endpoint https://<domain>/v1/webhooks/stripe"
  }
}

resource "aws_secretsmanager_secret" "generated" {
  for_each = toset(local.generated_names)

  name                    = "${var.name}/${each.key}"
  description             = "Managed by Terraform"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = toset(local.generated_names)

  secret_id     = aws_secretsmanager_secret.generated[each.key].id
  secret_string = local.generated[each.key]
}

resource "aws_secretsmanager_secret" "manual" {
  for_each = local.manual

  name                    = "${var.name}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.recovery_window_in_days

  tags = var.tags
}
