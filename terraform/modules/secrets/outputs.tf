output "kms_key_arn" {
  description = "KMS key the secrets are encrypted with (task execution roles decrypt with it)."
  value       = aws_kms_key.this.arn
}

output "database_url_arn" {
  description = "DATABASE_URL of the tables' owner (migrations, control worker)."
  value       = aws_secretsmanager_secret.generated["database-url"].arn
}

output "database_url_api_arn" {
  description = "DATABASE_URL of the API's login."
  value       = aws_secretsmanager_secret.generated["database-url-api"].arn
}

output "database_api_password_arn" {
  description = "Password of the API's login (read by the db-bootstrap task)."
  value       = aws_secretsmanager_secret.generated["database-api-password"].arn
}

output "redis_url_arn" {
  description = "REDIS_URL (rediss://, with the AUTH token)."
  value       = aws_secretsmanager_secret.generated["redis-url"].arn
}

output "temporal_db_password_arn" {
  description = "Password of Temporal's database user."
  value       = aws_secretsmanager_secret.generated["temporal-db-password"].arn
}

output "cloudfront_signing_key_arn" {
  description = "Private key for /images/* signed URLs."
  value       = aws_secretsmanager_secret.generated["cloudfront-signing-key"].arn
}

output "stripe_secret_key_arn" {
  description = "STRIPE_SECRET_KEY; set its value by hand."
  value       = aws_secretsmanager_secret.manual["stripe-secret-key"].arn
}

output "stripe_webhook_secret_arn" {
  description = "STRIPE_WEBHOOK_SECRET; set its value by hand."
  value       = aws_secretsmanager_secret.manual["stripe-webhook-secret"].arn
}
