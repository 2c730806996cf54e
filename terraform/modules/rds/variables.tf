variable "identifier" {
  description = "RDS instance identifier; also names its subnet group, parameter group and KMS key."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version: a major (\"16\", the newest 16.x, minors upgraded in the maintenance window) or an exact minor (the deployment guide's \"16.3\")."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "allocated_storage" {
  description = "Initial storage in GB."
  type        = number
  default     = 100
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GB."
  type        = number
  default     = 500
}

variable "db_name" {
  description = "Database created with the instance."
  type        = string
}

variable "username" {
  description = "Master user (owns the tables; runs migrations)."
  type        = string
}

variable "password" {
  description = "Master user's password."
  type        = string
  sensitive   = true
}

variable "multi_az" {
  description = "Keep a synchronous standby in the other zone."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Data subnets the instance may live in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the instance."
  type        = list(string)
}

variable "backup_retention_period" {
  description = "Days automated backups are kept."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse deletion until this is turned off."
  type        = bool
  default     = true
}

variable "performance_insights_enabled" {
  description = "Turn on Performance Insights (not available on the smallest classes)."
  type        = bool
  default     = true
}

variable "max_connections" {
  description = "max_connections of the instance; the connections alarm fires at 80% of it."
  type        = number
  default     = 1000
}

variable "force_ssl" {
  description = "Refuse unencrypted connections (rds.force_ssl)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
