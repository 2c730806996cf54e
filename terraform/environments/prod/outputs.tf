output "public_url" {
  description = "The product."
  value       = "https://${var.domain_name}"
}

output "cloudfront_distribution_id" {
  description = "CloudFront distribution (CLOUDFRONT_DISTRIBUTION_ID of the deploy workflow, which invalidates it after a frontend upload)."
  value       = module.cloudfront.distribution_id
}

output "frontend_bucket" {
  description = "Bucket of the web app's build (FRONTEND_BUCKET of the deploy workflow)."
  value       = module.s3.frontend_bucket.id
}

output "images_signing_key_pair_id" {
  description = "Key-Pair-Id of /images/* signed URLs (private key: secret <name>/cloudfront-signing-key)."
  value       = module.cloudfront.images_public_key_id
}

output "alb_dns_name" {
  description = "Load balancer (reachable only through CloudFront and for the Temporal UI)."
  value       = module.ecs.alb_dns_name
}

output "ecr_repository_urls" {
  description = "Where CI pushes images."
  value       = module.ecr.repository_urls
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.ecs.cluster_name
}

output "service_names" {
  description = "ECS services the deploy workflow updates."
  value = concat(
    [module.ecs.api_service_name, module.ecs.control_worker_service_name],
    [for g in module.gpu_asg : g.service_name],
  )
}

output "one_shot_task_families" {
  description = "One-shot tasks: migrations, database bootstrap, Temporal setup."
  value = {
    migrate        = module.ecs.migrate_task_family
    db_bootstrap   = module.ecs.db_bootstrap_task_family
    temporal_setup = module.temporal.setup_task_family
  }
}

output "task_network" {
  description = "Network configuration for aws ecs run-task of the one-shot tasks."
  value = {
    subnets         = module.vpc.private_subnet_ids
    security_groups = [module.security.worker_sg_id]
    temporal_sg     = module.security.temporal_sg_id
  }
}

output "temporal_address" {
  description = "Temporal frontend inside the VPC."
  value       = module.temporal.frontend_address
}

output "temporal_ui_url" {
  description = "Temporal Web UI (operators of the ops user pool)."
  value       = module.temporal.ui_url
}

output "oidc_issuer" {
  description = "OIDC_ISSUER of the API."
  value       = module.cognito.issuer
}

output "cognito" {
  description = "Sign-in: users' pool, web client (OIDC_AUDIENCE), hosted UI, operators' pool."
  value = {
    user_pool_id     = module.cognito.user_pool_id
    web_client_id    = module.cognito.web_client_id
    hosted_ui_domain = module.cognito.hosted_ui_domain
    ops_user_pool_id = module.cognito.ops_user_pool_id
  }
}

output "buckets" {
  description = "S3 buckets."
  value = {
    images   = module.s3.images_bucket.id
    models   = module.s3.models_bucket.id
    frontend = module.s3.frontend_bucket.id
  }
}

output "manual_secret_arns" {
  description = "Secrets to fill by hand before the first deploy (docs/deploy.md)."
  value = {
    stripe_secret_key     = module.secrets.stripe_secret_key_arn
    stripe_webhook_secret = module.secrets.stripe_webhook_secret_arn
  }
}

output "prometheus_endpoint" {
  description = "Managed Prometheus query endpoint (Grafana data source)."
  value       = module.monitoring.prometheus_endpoint
}

output "alarm_topic_arns" {
  description = "SNS topics of the alarms."
  value       = module.monitoring.alarm_topic_arns
}

output "dashboards" {
  description = "CloudWatch dashboards."
  value       = module.monitoring.dashboard_names
}

output "public_fqdn" {
  description = "The public name in Route 53."
  value       = module.dns.public_fqdn
}

output "github" {
  description = "Values for the GitHub environment: AWS_ROLE_ARN, FRONTEND_BUCKET, CLOUDFRONT_DISTRIBUTION_ID, ... (and, from staging, STAGING_ECR_ROLE_ARN for production)."
  value = {
    AWS_ROLE_ARN               = module.ci.deploy_role_arn
    STAGING_ECR_ROLE_ARN       = module.ci.ecr_read_role_arn
    STACK_NAME                 = local.name
    AWS_REGION                 = var.region
    PUBLIC_URL                 = "https://${var.domain_name}"
    FRONTEND_BUCKET            = module.s3.frontend_bucket.id
    CLOUDFRONT_DISTRIBUTION_ID = module.cloudfront.distribution_id
  }
}
