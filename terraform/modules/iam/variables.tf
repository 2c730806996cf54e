variable "name" {
  description = "Name prefix of the roles."
  type        = string
}

variable "images_bucket_arn" {
  description = "ARN of the images bucket."
  type        = string
}

variable "models_bucket_arn" {
  description = "ARN of the models bucket."
  type        = string
}

variable "efs_file_system_arn" {
  description = "ARN of the model cache file system."
  type        = string
}

variable "efs_access_point_arn" {
  description = "ARN of the model cache's /models access point."
  type        = string
}

variable "ses_identity_arn" {
  description = "SES identity the control worker sends notices from."
  type        = string
}

variable "secrets_kms_key_arn" {
  description = "KMS key of the secrets."
  type        = string
}

variable "api_secret_arns" {
  description = "Secrets the API tasks read at start."
  type        = list(string)
}

variable "worker_secret_arns" {
  description = "Secrets the control worker, migration and db-bootstrap tasks read at start."
  type        = list(string)
}

variable "gpu_secret_arns" {
  description = "Secrets the GPU worker tasks read at start."
  type        = list(string)
}

variable "gpu_asg_name_prefix" {
  description = "Name prefix of the GPU Auto Scaling groups the autoscaler may resize."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
