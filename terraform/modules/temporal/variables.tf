variable "name" {
  description = "Stack name; Temporal's services, tasks and private DNS namespace are named after it."
  type        = string
}

variable "region" {
  description = "AWS region (log driver)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the private DNS namespace and the UI target group."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "temporal_sg_id" {
  description = "Security group of the server and UI tasks."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster of the services."
  type        = string
}

variable "server_image" {
  description = "Temporal server image with Easel's dynamic config (deploy/docker/Dockerfile.temporal)."
  type        = string
}

variable "admin_tools_image" {
  description = "temporalio/admin-tools image of the same version as the server."
  type        = string
}

variable "ui_image" {
  description = "Temporal Web UI image."
  type        = string
}

variable "db_host" {
  description = "Host of Temporal's PostgreSQL."
  type        = string
}

variable "db_port" {
  description = "Port of Temporal's PostgreSQL."
  type        = number
  default     = 5432
}

variable "db_user" {
  description = "Database user of Temporal (creates the temporal and temporal_visibility databases)."
  type        = string
}

variable "db_password_secret_arn" {
  description = "Secret holding db_user's password."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secret."
  type        = string
}

variable "namespace" {
  description = "Temporal namespace Easel runs in."
  type        = string
}

variable "retention" {
  description = "How long closed workflow histories are kept (runs stay inspectable in the UI that long)."
  type        = string
  default     = "720h"
}

variable "num_history_shards" {
  description = "History shards; cannot change after the first start."
  type        = number
  default     = 512
}

variable "server_count" {
  description = "Server tasks (each runs every role)."
  type        = number
  default     = 2
}

variable "server_cpu" {
  description = "CPU units of a server task."
  type        = number
  default     = 2048
}

variable "server_memory" {
  description = "Memory (MiB) of a server task."
  type        = number
  default     = 4096
}

variable "alb_listener_arn" {
  description = "HTTPS listener the UI's rule is added to."
  type        = string
}

variable "alb_rule_priority" {
  description = "Priority of the UI's listener rule."
  type        = number
  default     = 20
}

variable "ui_host" {
  description = "Host name of the Web UI."
  type        = string
}

variable "ops_user_pool_arn" {
  description = "Cognito pool of the operators."
  type        = string
}

variable "ops_client_id" {
  description = "Cognito client the load balancer signs operators in with."
  type        = string
}

variable "ops_domain" {
  description = "Hosted UI domain prefix of the operators' pool."
  type        = string
}

variable "log_retention_days" {
  description = "Days logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
