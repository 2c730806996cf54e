# --- naming and place ---

variable "project" {
  description = "Project name, the first half of every resource name."
  type        = string
  default     = "easel"
}

variable "environment" {
  description = "Environment name, the second half of every resource name (easel-prod)."
  type        = string
  default     = "prod"
}

variable "region" {
  description = "AWS region of the stack (the deployment guide: Seoul)."
  type        = string
  default     = "ap-northeast-2"
}

variable "availability_zones" {
  description = "Two availability zones (the deployment guide's A and B)."
  type        = list(string)
  default     = ["ap-northeast-2a", "ap-northeast-2b"]
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "public_subnets" {
  description = "Public subnets, one per zone (load balancer, NAT)."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]
}

variable "private_subnets" {
  description = "Private subnets, one per zone (API, workers, GPU hosts)."
  type        = list(string)
  default     = ["10.0.11.0/24", "10.0.12.0/24"]
}

variable "database_subnets" {
  description = "Data subnets, one per zone (RDS, ElastiCache)."
  type        = list(string)
  default     = ["10.0.21.0/24", "10.0.22.0/24"]
}

# --- names on the internet ---

variable "domain_name" {
  description = "Public domain of the product (web app and API), e.g. easel.example.com; origin.<domain> and temporal.<domain> are created too."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone that holds domain_name."
  type        = string
}

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito hosted UI domain (unique in the region)."
  type        = string
}

variable "web_callback_urls" {
  description = "Sign-in callback URLs of the web app; empty for https://<domain>/auth/callback and /auth/silent.html."
  type        = list(string)
  default     = []
}

variable "cognito_mail_through_ses" {
  description = "Send Cognito's mails through the SES domain identity (turn on once SES is out of the sandbox)."
  type        = bool
  default     = false
}

# --- what runs ---

variable "image_tag" {
  description = "Image tag (git commit) of easel-prod/api, gpu-worker and temporal that Terraform registers in the task definitions; later rollouts come from the deploy workflow."
  type        = string
}

variable "invokeai_image" {
  description = "InvokeAI image of the GPU sidecars, pinned to a release (e.g. ghcr.io/invoke-ai/invokeai:<version>, mirrored into ECR for production)."
  type        = string
}

variable "gpu_engine" {
  description = "Image engine of the GPU workers (--engine): invokeai in production; sim runs on the CPU for a smoke test."
  type        = string
  default     = "invokeai"
}

variable "gpu_tiers" {
  description = "GPU tiers (design document section 4.1): instance types in order of preference, hosts in the on-demand group, a spot group for the autoscaler's floor, and the prepared capacity of the on-demand group's warm pool (0 for none)."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    spot           = bool
    warm_pool      = number
  }))
  default = {
    t4 = {
      instance_types = ["g4dn.xlarge", "g4dn.2xlarge"]
      min_size       = 1
      max_size       = 10
      spot           = true
      warm_pool      = 10
    }
    a10g = {
      instance_types = ["g5.xlarge", "g5.2xlarge"]
      min_size       = 1
      max_size       = 10
      spot           = true
      warm_pool      = 10
    }
    # Eight A100s per host: eight InvokeAI servers, one per GPU, and the
    # worker renders eight images at once (one slot per GPU, each on its
    # GPU's server). Every instance type of a tier must have the tier's GPU
    # count (deploy/ecs/gpu-worker-<tier>.json, docs/deploy.md "GPU hosts"). Scaled to zero when idle (an
    # idle p4d.24xlarge costs about $23,600 a month): the autoscaler
    # (AUTOSCALE_TIER_MIN defaults to a100=0) starts one for the first job,
    # from a warm pool of one stopped host. No spot: p4d spot capacity is
    # rarely there.
    a100 = {
      instance_types = ["p4d.24xlarge"]
      min_size       = 0
      max_size       = 10
      spot           = false
      warm_pool      = 1
    }
  }

  validation {
    condition     = alltrue([for t in keys(var.gpu_tiers) : contains(["t4", "a10g", "a100"], t)])
    error_message = "GPU tiers are t4, a10g and a100."
  }
}

variable "api_db_login" {
  description = "PostgreSQL login of the API (member of easel_api, created by the db-bootstrap task)."
  type        = string
  default     = "easel_app"
}

variable "temporal_version" {
  description = "Temporal server version (deploy/docker/Dockerfile.temporal, admin-tools image); keep on the minor of go.temporal.io/server in go.mod."
  type        = string
  default     = "1.31.2"
}

variable "temporal_ui_image" {
  description = "Temporal Web UI image."
  type        = string
  default     = "temporalio/ui:2.50.1"
}

variable "temporal_namespace" {
  description = "Temporal namespace Easel runs in."
  type        = string
  default     = "easel"
}

# --- sizes ---

variable "db_instance_class" {
  description = "Instance class of Easel's PostgreSQL (seed: db.r6g.large)."
  type        = string
  default     = "db.r6g.large"
}

variable "temporal_db_instance_class" {
  description = "Instance class of Temporal's PostgreSQL."
  type        = string
  default     = "db.m6g.large"
}

variable "redis_node_type" {
  description = "Node type of Redis (seed: cache.r6g.large)."
  type        = string
  default     = "cache.r6g.large"
}

variable "api_min_count" {
  description = "API tasks at least."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "API tasks at most."
  type        = number
  default     = 10
}

variable "worker_count" {
  description = "Control-plane worker tasks."
  type        = number
  default     = 2
}

variable "waf_rate_limit" {
  description = "Requests per IP per 5 minutes before WAF blocks."
  type        = number
  default     = 3000
}

# --- operations ---

variable "log_level" {
  description = "LOG_LEVEL of the services."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days container logs are kept."
  type        = number
  default     = 30
}

variable "pagerduty_endpoint" {
  description = "HTTPS endpoint of PagerDuty's CloudWatch integration (critical alarms); empty for none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "slack_email" {
  description = "E-mail address of the Slack alerts channel (high and medium alarms); empty for none."
  type        = string
  default     = ""
}

# --- CI/CD ---

variable "github_repository" {
  description = "GitHub repository (owner/name) whose deploy workflow may assume the deploy role."
  type        = string
}

variable "github_environment" {
  description = "GitHub environment that deploys this stack."
  type        = string
  default     = "production"
}

variable "github_ecr_read_environments" {
  description = "GitHub environments that may pull this stack's images (set [\"production\"] on staging)."
  type        = list(string)
  default     = []
}

variable "create_github_oidc_provider" {
  description = "Create GitHub's OIDC provider in this account (false if another stack in the account already did)."
  type        = bool
  default     = true
}

variable "autoscaler" {
  description = "The GPU autoscaler's settings, AUTOSCALE_* of the control worker (docs/autoscaling.md, \"Configuration\"); unset fields keep the defaults. Durations are Go durations (10s, 4m)."
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

  validation {
    condition     = contains(["rules", "work"], var.autoscaler.policy) && contains(["off", "heartbeats"], var.autoscaler.host_activity)
    error_message = "autoscaler.policy is rules or work; autoscaler.host_activity is off or heartbeats."
  }
}
