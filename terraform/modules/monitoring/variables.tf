variable "name" {
  description = "Stack name; alarms, dashboards, topics and the collector are named after it."
  type        = string
}

variable "region" {
  description = "AWS region of the metrics."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster (collector discovery, dashboards)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster of the collector service."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets of the collector."
  type        = list(string)
}

variable "collector_sg_id" {
  description = "Security group of the collector."
  type        = string
}

variable "collector_image" {
  description = "AWS Distro for OpenTelemetry collector image."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the load balancer."
  type        = string
}

variable "api_target_group_arn_suffix" {
  description = "ARN suffix of the API target group."
  type        = string
}

variable "gpu_tiers" {
  description = "GPU tiers: Auto Scaling group name and the scale-out policy the queue-depth alarm triggers."
  type = map(object({
    asg_name             = string
    scale_out_policy_arn = string
  }))
}

variable "rds_instances" {
  description = "Databases to watch: identifier and max_connections."
  type = map(object({
    identifier      = string
    max_connections = number
  }))
}

variable "redis_node_ids" {
  description = "Redis nodes (cache cluster ids)."
  type        = list(string)
}

variable "images_bucket_name" {
  description = "Images bucket."
  type        = string
}

variable "images_metrics_filter" {
  description = "Request-metrics filter of the images bucket."
  type        = string
}

variable "cognito_user_pool_id" {
  description = "Users' pool (sign-ins)."
  type        = string
}

variable "cognito_client_id" {
  description = "Web app client (sign-ins)."
  type        = string
}

variable "pagerduty_endpoint" {
  description = "HTTPS endpoint of PagerDuty's CloudWatch integration for critical alarms; empty for none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "slack_email" {
  description = "E-mail address of the Slack channel for high and medium alarms; empty for none."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Days the collector's logs are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
