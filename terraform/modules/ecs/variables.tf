variable "name" {
  description = "Stack name: the cluster, services, task families and log groups are named after it."
  type        = string
}

variable "region" {
  description = "AWS region (task environment and log driver)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer's target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "alb_sg_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "api_sg_id" {
  description = "Security group of the API tasks."
  type        = string
}

variable "worker_sg_id" {
  description = "Security group of the control worker, migration and bootstrap tasks."
  type        = string
}

variable "certificate_arn" {
  description = "Certificate of the load balancer's HTTPS listener."
  type        = string
}

variable "api_origin_domain" {
  description = "Host name CloudFront sends API requests to."
  type        = string
}

variable "origin_verify_header" {
  description = "Header that proves a request came through CloudFront."
  type        = string
  default     = "X-Origin-Verify"
}

variable "origin_verify_secret" {
  description = "Value of origin_verify_header."
  type        = string
  sensitive   = true
}

variable "easel_image" {
  description = "Image of the easel binary (deploy/docker/Dockerfile.api) that Terraform registers; the deploy workflow rolls newer ones out."
  type        = string
}

variable "psql_image" {
  description = "Image with psql for the db-bootstrap task."
  type        = string
  default     = "public.ecr.aws/docker/library/postgres:16-alpine"
}

variable "execution_role_arns" {
  description = "Task execution role by workload (api, worker)."
  type        = map(string)
}

variable "task_role_arns" {
  description = "Task role by workload (api, worker)."
  type        = map(string)
}

variable "secret_arns" {
  description = "Secrets Manager ARNs the tasks read."
  type = object({
    database_url          = string
    database_url_api      = string
    database_api_password = string
    redis_url             = string
    stripe_secret_key     = string
    stripe_webhook_secret = string
    # CLOUDFRONT_PRIVATE_KEY of the API: signs /images/* URLs.
    cloudfront_signing_key = string
  })
}

variable "api_db_login" {
  description = "PostgreSQL login the API connects as (created by the db-bootstrap task)."
  type        = string
  default     = "easel_app"
}

variable "temporal_address" {
  description = "Temporal frontend host:port (TEMPORAL_ADDRESS)."
  type        = string
}

variable "temporal_namespace" {
  description = "Temporal namespace (TEMPORAL_NAMESPACE)."
  type        = string
}

variable "images_bucket" {
  description = "Images bucket (S3_BUCKET)."
  type        = string
}

variable "oidc_issuer" {
  description = "ID token issuer (OIDC_ISSUER)."
  type        = string
}

variable "oidc_audience" {
  description = "ID token audience (OIDC_AUDIENCE)."
  type        = string
}

variable "oidc_hosted_ui_url" {
  description = "Cognito's hosted UI, https://<domain> (OIDC_HOSTED_UI_URL): where the web app signs in, restores a session after a reload, and signs out."
  type        = string
}

variable "cloudfront_domain" {
  description = "Host name that serves /images/* through CloudFront, which the API signs image URLs for (CLOUDFRONT_DOMAIN)."
  type        = string

  validation {
    condition     = var.cloudfront_domain != "" && !strcontains(var.cloudfront_domain, "/")
    error_message = "cloudfront_domain is a host name (e.g. easel.example.com), without scheme or path."
  }
}

variable "cloudfront_key_id" {
  description = "CloudFront public key id of the key group trusted by /images/* (CLOUDFRONT_KEY_ID, the signed URLs' Key-Pair-Id)."
  type        = string
}

variable "notify_from" {
  description = "Sender of users' notices (NOTIFY_FROM)."
  type        = string
}

variable "gpu_asg_names" {
  description = "GPU Auto Scaling group of each tier (t4, a10g, a100) that the control worker's autoscaler sizes (AUTOSCALE_GROUPS)."
  type        = map(string)

  validation {
    condition     = length(var.gpu_asg_names) > 0 && alltrue([for t in keys(var.gpu_asg_names) : contains(["t4", "a10g", "a100"], t)])
    error_message = "The control worker runs the autoscaler (AUTOSCALE_DRIVER=ec2): name the Auto Scaling group of at least one tier, and only tiers t4, a10g and a100."
  }
}

variable "gpu_spot_asg_names" {
  description = "Spot group of each tier that has one (AUTOSCALE_SPOT_GROUPS): the autoscaler's work policy runs its floor there."
  type        = map(string)
  default     = {}
}

variable "gpu_warm_pools" {
  description = "Prepared capacity of each tier's on-demand group with its warm pool, kept by the autoscaler (AUTOSCALE_WARM_POOL); a tier not listed has none managed."
  type        = map(number)
  default     = {}
}

variable "autoscaler" {
  description = "The GPU autoscaler's AUTOSCALE_* settings (docs/autoscaling.md, \"Configuration\"); unset fields keep the defaults."
  type = object({
    policy          = optional(string, "rules")
    min             = optional(number, 1)
    max             = optional(number, 10)
    tier_min        = optional(map(number), { a100 = 0 })
    up_rules        = optional(string, "10:1:5m,50:3:3m")
    in_below        = optional(number, 3)
    in_for          = optional(string, "10m")
    timezone        = optional(string, "Asia/Seoul")
    windows         = optional(string, "02:00-07:00=2")
    poll_interval   = optional(string, "30s")
    up_age          = optional(string, "10s")
    up_wait         = optional(string, "20s")
    free_up_age     = optional(string, "90s")
    drain           = optional(string, "4m")
    idle_for        = optional(string, "10s")
    billing_period  = optional(string, "0s")
    billing_margin  = optional(string, "0s")
    billing_minimum = optional(string, "1m")
    floor           = optional(number, 0.8)
    floor_lead      = optional(string, "10m")
    host_activity   = optional(string, "heartbeats")
  })
  default = {}
}

variable "log_level" {
  description = "LOG_LEVEL of the services."
  type        = string
  default     = "info"
}

variable "api_cpu" {
  description = "CPU units of an API task (seed: 2 vCPU)."
  type        = number
  default     = 2048
}

variable "api_memory" {
  description = "Memory (MiB) of an API task (seed: 4 GB)."
  type        = number
  default     = 4096
}

variable "api_min_count" {
  description = "API tasks at least (two zones)."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "API tasks at most."
  type        = number
  default     = 10
}

variable "worker_cpu" {
  description = "CPU units of a control worker task."
  type        = number
  default     = 1024
}

variable "worker_memory" {
  description = "Memory (MiB) of a control worker task."
  type        = number
  default     = 2048
}

variable "worker_count" {
  description = "Control worker tasks."
  type        = number
  default     = 2
}

variable "log_retention_days" {
  description = "Days container logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
