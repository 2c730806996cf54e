variable "name" {
  description = "Stack name (roles, services and task families are named after it)."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the roles."
  type        = string
}

variable "environment" {
  description = "GitHub environment whose jobs deploy this stack (staging or production)."
  type        = string
}

variable "read_environments" {
  description = "GitHub environments that may pull this stack's images (staging's stack: [\"production\"])."
  type        = list(string)
  default     = []
}

variable "create_oidc_provider" {
  description = "Create GitHub's OIDC provider (once per AWS account; false when another stack made it)."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "ECS cluster of the stack."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster of the stack."
  type        = string
}

variable "ecr_repository_arns" {
  description = "Repositories the workflow pushes to."
  type        = list(string)
}

variable "pass_role_arns" {
  description = "Task and execution roles the new task definition revisions name."
  type        = list(string)
}

variable "frontend_bucket_arn" {
  description = "Bucket the workflow publishes the web app's build to."
  type        = string
}

variable "cloudfront_distribution_arn" {
  description = "Distribution the workflow invalidates after publishing the web app."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
