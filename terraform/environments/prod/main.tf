# Easel in production: the AWS stack of the deployment guide (network, data stores,
# edge, ECS services and GPU tiers, sign-in, secrets, monitoring) and a
# self-hosted Temporal. docs/deploy.md walks through applying it.

locals {
  name = "${var.project}-${var.environment}"

  tags = {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "terraform"
  }

  # The load balancer's names: CloudFront's API origin and the Temporal UI.
  api_origin  = "origin.${var.domain_name}"
  temporal_ui = "temporal.${var.domain_name}"

  images = {
    api      = "${module.ecr.repository_urls["api"]}:${var.image_tag}"
    gpu      = "${module.ecr.repository_urls["gpu-worker"]}:${var.image_tag}"
    temporal = "${module.ecr.repository_urls["temporal"]}:${var.image_tag}"
  }

  # The sign-in callback, and the page a silent sign-in (a session restored
  # after a reload, in a hidden frame) comes back to.
  web_callback_urls = coalescelist(var.web_callback_urls, ["https://${var.domain_name}/auth/callback", "https://${var.domain_name}/auth/silent.html"])
}

# --- generated credentials (kept in the encrypted state and in Secrets Manager) ---

resource "random_password" "db_owner" {
  length  = 40
  special = false
}

resource "random_password" "db_api" {
  length  = 40
  special = false
}

resource "random_password" "temporal_db" {
  length  = 40
  special = false
}

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "random_password" "origin_verify" {
  length  = 48
  special = false
}

resource "tls_private_key" "cloudfront_signing" {
  algorithm = "RSA"
  rsa_bits  = 2048
}

# --- network ---

module "vpc" {
  source = "../../modules/vpc"

  name             = local.name
  cidr             = var.vpc_cidr
  azs              = var.availability_zones
  public_subnets   = var.public_subnets
  private_subnets  = var.private_subnets
  database_subnets = var.database_subnets
  tags             = local.tags
}

module "security" {
  source = "../../modules/security"

  name   = local.name
  vpc_id = module.vpc.vpc_id
  tags   = local.tags
}

# --- data ---

module "rds" {
  source = "../../modules/rds"

  identifier         = "${local.name}-db"
  instance_class     = var.db_instance_class
  db_name            = "easel"
  username           = "easel_admin"
  password           = random_password.db_owner.result
  subnet_ids         = module.vpc.database_subnet_ids
  security_group_ids = [module.security.rds_sg_id]
  tags               = local.tags
}

module "elasticache" {
  source = "../../modules/elasticache"

  name               = "${local.name}-redis"
  node_type          = var.redis_node_type
  subnet_ids         = module.vpc.database_subnet_ids
  security_group_ids = [module.security.redis_sg_id]
  auth_token         = random_password.redis_auth.result
  tags               = local.tags
}

module "s3" {
  source = "../../modules/s3"

  name = local.name
  tags = local.tags
}

module "efs" {
  source = "../../modules/efs"

  name               = "${local.name}-models"
  subnet_ids         = module.vpc.private_subnet_ids
  security_group_ids = [module.security.efs_sg_id]
  tags               = local.tags
}

module "ecr" {
  source = "../../modules/ecr"

  name = local.name
  tags = local.tags
}

# --- edge ---

module "acm" {
  source = "../../modules/acm"

  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  domain_name    = var.domain_name
  regional_names = [local.api_origin, local.temporal_ui]
  zone_id        = var.route53_zone_id
  tags           = local.tags
}

module "waf" {
  source = "../../modules/waf"

  providers = {
    aws = aws.us_east_1
  }

  name       = local.name
  rate_limit = var.waf_rate_limit
  tags       = local.tags
}

module "cloudfront" {
  source = "../../modules/cloudfront"

  name                   = local.name
  aliases                = [var.domain_name]
  certificate_arn        = module.acm.cloudfront_certificate_arn
  web_acl_arn            = module.waf.web_acl_arn
  images_bucket          = module.s3.images_bucket
  frontend_bucket        = module.s3.frontend_bucket
  api_origin_domain      = local.api_origin
  origin_verify_secret   = random_password.origin_verify.result
  signing_public_key_pem = tls_private_key.cloudfront_signing.public_key_pem
  tags                   = local.tags
}

module "dns" {
  source = "../../modules/dns"

  zone_id                = var.route53_zone_id
  domain_name            = var.domain_name
  cloudfront_domain_name = module.cloudfront.domain_name
  cloudfront_zone_id     = module.cloudfront.hosted_zone_id
  alb_names              = [local.api_origin, local.temporal_ui]
  alb_dns_name           = module.ecs.alb_dns_name
  alb_zone_id            = module.ecs.alb_zone_id
}

# --- identity, mail, secrets, roles ---

module "ses" {
  source = "../../modules/ses"

  domain_name = var.domain_name
  zone_id     = var.route53_zone_id
  tags        = local.tags
}

module "cognito" {
  source = "../../modules/cognito"

  name               = local.name
  domain_prefix      = var.cognito_domain_prefix
  callback_urls      = local.web_callback_urls
  logout_urls        = ["https://${var.domain_name}/"]
  ops_callback_urls  = ["https://${local.temporal_ui}/oauth2/idpresponse"]
  ses_identity_arn   = var.cognito_mail_through_ses ? module.ses.identity_arn : ""
  from_email_address = module.ses.from_address
  tags               = local.tags
}

module "secrets" {
  source = "../../modules/secrets"

  name = local.name
  database = {
    host           = module.rds.address
    port           = module.rds.port
    name           = module.rds.db_name
    owner_username = "easel_admin"
    owner_password = random_password.db_owner.result
    api_username   = var.api_db_login
    api_password   = random_password.db_api.result
  }
  redis = {
    host       = module.elasticache.primary_endpoint_address
    port       = module.elasticache.port
    auth_token = random_password.redis_auth.result
  }
  temporal_db_password       = random_password.temporal_db.result
  cloudfront_private_key_pem = tls_private_key.cloudfront_signing.private_key_pem
  tags                       = local.tags
}

module "iam" {
  source = "../../modules/iam"

  name                 = local.name
  images_bucket_arn    = module.s3.images_bucket.arn
  models_bucket_arn    = module.s3.models_bucket.arn
  efs_file_system_arn  = module.efs.file_system_arn
  efs_access_point_arn = module.efs.access_point_arn
  ses_identity_arn     = module.ses.identity_arn
  secrets_kms_key_arn  = module.secrets.kms_key_arn
  api_secret_arns = [
    module.secrets.database_url_api_arn,
    module.secrets.redis_url_arn,
    module.secrets.stripe_secret_key_arn,
    module.secrets.stripe_webhook_secret_arn,
    module.secrets.cloudfront_signing_key_arn,
  ]
  worker_secret_arns = [
    module.secrets.database_url_arn,
    module.secrets.database_api_password_arn,
    module.secrets.redis_url_arn,
    module.secrets.stripe_secret_key_arn,
  ]
  gpu_secret_arns     = [module.secrets.redis_url_arn]
  gpu_asg_name_prefix = "${local.name}-gpu-"
  tags                = local.tags
}

# --- Temporal (self-hosted; docs/deploy.md) ---

module "temporal_db" {
  source = "../../modules/rds"

  identifier            = "${local.name}-temporal-db"
  instance_class        = var.temporal_db_instance_class
  allocated_storage     = 50
  max_allocated_storage = 200
  db_name               = "temporal"
  username              = "temporal"
  password              = random_password.temporal_db.result
  max_connections       = 500
  # The server image's SQL TLS settings are not wired; the database is only
  # reachable from the temporal security group inside the data subnets.
  force_ssl          = false
  subnet_ids         = module.vpc.database_subnet_ids
  security_group_ids = [module.security.temporal_db_sg_id]
  tags               = local.tags
}

module "temporal" {
  source = "../../modules/temporal"

  name                   = local.name
  region                 = var.region
  vpc_id                 = module.vpc.vpc_id
  private_subnet_ids     = module.vpc.private_subnet_ids
  temporal_sg_id         = module.security.temporal_sg_id
  cluster_arn            = module.ecs.cluster_arn
  server_image           = local.images.temporal
  admin_tools_image      = "temporalio/admin-tools:${var.temporal_version}"
  ui_image               = var.temporal_ui_image
  db_host                = module.temporal_db.address
  db_port                = module.temporal_db.port
  db_user                = "temporal"
  db_password_secret_arn = module.secrets.temporal_db_password_arn
  secrets_kms_key_arn    = module.secrets.kms_key_arn
  namespace              = var.temporal_namespace
  alb_listener_arn       = module.ecs.https_listener_arn
  ui_host                = local.temporal_ui
  ops_user_pool_arn      = module.cognito.ops_user_pool_arn
  ops_client_id          = module.cognito.ops_client_id
  ops_domain             = module.cognito.ops_domain
  log_retention_days     = var.log_retention_days
  tags                   = local.tags
}

# --- Easel ---

module "ecs" {
  source = "../../modules/ecs"

  name                 = local.name
  region               = var.region
  vpc_id               = module.vpc.vpc_id
  public_subnet_ids    = module.vpc.public_subnet_ids
  private_subnet_ids   = module.vpc.private_subnet_ids
  alb_sg_id            = module.security.alb_sg_id
  api_sg_id            = module.security.api_sg_id
  worker_sg_id         = module.security.worker_sg_id
  certificate_arn      = module.acm.regional_certificate_arn
  api_origin_domain    = local.api_origin
  origin_verify_secret = random_password.origin_verify.result
  easel_image          = local.images.api
  execution_role_arns  = module.iam.execution_role_arns
  task_role_arns       = module.iam.task_role_arns
  secret_arns = {
    database_url           = module.secrets.database_url_arn
    database_url_api       = module.secrets.database_url_api_arn
    database_api_password  = module.secrets.database_api_password_arn
    redis_url              = module.secrets.redis_url_arn
    stripe_secret_key      = module.secrets.stripe_secret_key_arn
    stripe_webhook_secret  = module.secrets.stripe_webhook_secret_arn
    cloudfront_signing_key = module.secrets.cloudfront_signing_key_arn
  }
  cloudfront_domain  = module.cloudfront.images_domain
  cloudfront_key_id  = module.cloudfront.images_public_key_id
  api_db_login       = var.api_db_login
  temporal_address   = module.temporal.frontend_address
  temporal_namespace = module.temporal.namespace
  images_bucket      = module.s3.images_bucket.id
  oidc_issuer        = module.cognito.issuer
  oidc_audience      = module.cognito.web_client_id
  oidc_hosted_ui_url = "https://${module.cognito.hosted_ui_domain}"
  notify_from        = module.ses.from_address
  gpu_asg_names      = { for tier, g in module.gpu_asg : tier => g.asg_name }
  gpu_spot_asg_names = { for tier, g in module.gpu_asg : tier => g.spot_asg_name if g.spot_asg_name != null }
  gpu_warm_pools     = { for tier, g in var.gpu_tiers : tier => g.warm_pool if g.warm_pool > 0 }
  autoscaler         = var.autoscaler
  log_level          = var.log_level
  api_min_count      = var.api_min_count
  api_max_count      = var.api_max_count
  worker_count       = var.worker_count
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "gpu_asg" {
  source   = "../../modules/gpu_asg"
  for_each = var.gpu_tiers

  name                 = "${local.name}-gpu-${each.key}"
  tier                 = each.key
  region               = var.region
  instance_types       = each.value.instance_types
  min_size             = each.value.min_size
  max_size             = each.value.max_size
  spot                 = each.value.spot
  subnet_ids           = module.vpc.private_subnet_ids
  gpu_sg_id            = module.security.gpu_sg_id
  instance_profile_arn = module.iam.gpu_instance_profile_arn
  cluster_name         = module.ecs.cluster_name
  cluster_arn          = module.ecs.cluster_arn
  gpu_image            = local.images.gpu
  invokeai_image       = var.invokeai_image
  engine               = var.gpu_engine
  execution_role_arn   = module.iam.execution_role_arns["gpu"]
  task_role_arn        = module.iam.task_role_arns["gpu"]
  temporal_address     = module.temporal.frontend_address
  temporal_namespace   = module.temporal.namespace
  images_bucket        = module.s3.images_bucket.id
  redis_url_secret_arn = module.secrets.redis_url_arn
  efs_file_system_id   = module.efs.file_system_id
  efs_access_point_id  = module.efs.access_point_id
  log_level            = var.log_level
  log_retention_days   = var.log_retention_days
  tags                 = local.tags
}

# --- monitoring ---

module "monitoring" {
  source = "../../modules/monitoring"

  name                        = local.name
  region                      = var.region
  cluster_name                = module.ecs.cluster_name
  cluster_arn                 = module.ecs.cluster_arn
  private_subnet_ids          = module.vpc.private_subnet_ids
  collector_sg_id             = module.security.collector_sg_id
  alb_arn_suffix              = module.ecs.alb_arn_suffix
  api_target_group_arn_suffix = module.ecs.api_target_group_arn_suffix
  gpu_tiers = {
    for tier, g in module.gpu_asg : tier => {
      asg_name             = g.asg_name
      scale_out_policy_arn = g.queue_surge_policy_arn
    }
  }
  rds_instances = {
    easel = {
      identifier      = module.rds.identifier
      max_connections = module.rds.max_connections
    }
    temporal = {
      identifier      = module.temporal_db.identifier
      max_connections = module.temporal_db.max_connections
    }
  }
  redis_node_ids        = module.elasticache.node_ids
  images_bucket_name    = module.s3.images_bucket.id
  images_metrics_filter = module.s3.images_metrics_filter
  cognito_user_pool_id  = module.cognito.user_pool_id
  cognito_client_id     = module.cognito.web_client_id
  pagerduty_endpoint    = var.pagerduty_endpoint
  slack_email           = var.slack_email
  log_retention_days    = var.log_retention_days
  tags                  = local.tags
}

# --- CI/CD ---

module "ci" {
  source = "../../modules/ci"

  name                        = local.name
  github_repository           = var.github_repository
  environment                 = var.github_environment
  read_environments           = var.github_ecr_read_environments
  create_oidc_provider        = var.create_github_oidc_provider
  cluster_name                = module.ecs.cluster_name
  cluster_arn                 = module.ecs.cluster_arn
  ecr_repository_arns         = module.ecr.repository_arns
  pass_role_arns              = concat(values(module.iam.execution_role_arns), values(module.iam.task_role_arns))
  frontend_bucket_arn         = module.s3.frontend_bucket.arn
  cloudfront_distribution_arn = module.cloudfront.distribution_arn
  tags                        = local.tags
}
