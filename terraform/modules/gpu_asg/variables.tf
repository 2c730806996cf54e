variable "name" {
  description = "Name of the tier's Auto Scaling group, service, task family and log group (<stack>-gpu-<tier>)."
  type        = string
}

variable "tier" {
  description = "GPU tier: t4, a10g or a100 (deploy/ecs/gpu-worker-<tier>.json)."
  type        = string

  validation {
    condition     = contains(["t4", "a10g", "a100"], var.tier)
    error_message = "The tier must be t4, a10g or a100."
  }
}

variable "region" {
  description = "AWS region (task environment and log driver)."
  type        = string
}

variable "instance_types" {
  description = "Instance types of the tier, in order of preference; all with the GPU count of the tier's task definition (one InvokeAI server per GPU). The on-demand group with its warm pool launches the first; the spot group any."
  type        = list(string)
}

variable "min_size" {
  description = "Hosts at least in the on-demand group (the design document: 1)."
  type        = number
  default     = 1
}

variable "max_size" {
  description = "Hosts at most in each group (the design document: 10)."
  type        = number
  default     = 10
}

variable "spot" {
  description = "Add a spot-only group (<name>-spot, every instance type) beside the on-demand group with its warm pool; the autoscaler runs the work policy's floor on it (AUTOSCALE_SPOT_GROUPS)."
  type        = bool
  default     = false
}

variable "ami_ssm_parameter" {
  description = "SSM parameter holding the ECS GPU-optimized AMI id."
  type        = string
  default     = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
}

variable "root_volume_gb" {
  description = "Root volume size (images, InvokeAI's working files)."
  type        = number
  default     = 200
}

variable "subnet_ids" {
  description = "Private subnets of the hosts and tasks."
  type        = list(string)
}

variable "gpu_sg_id" {
  description = "Security group of the hosts and tasks (sg-gpu)."
  type        = string
}

variable "instance_profile_arn" {
  description = "Instance profile of the hosts."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster the hosts join."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster of the daemon service."
  type        = string
}

variable "gpu_image" {
  description = "Image of the GPU worker (deploy/docker/Dockerfile.gpu-worker) that Terraform registers; the deploy workflow rolls newer ones out."
  type        = string
}

variable "invokeai_image" {
  description = "InvokeAI image of the sidecars (one InvokeAI server per GPU)."
  type        = string
}

variable "engine" {
  description = "Image engine the worker drives (--engine)."
  type        = string
}

variable "execution_role_arn" {
  description = "Task execution role of the GPU task."
  type        = string
}

variable "task_role_arn" {
  description = "Task role of the GPU task."
  type        = string
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

variable "redis_url_secret_arn" {
  description = "Secret holding REDIS_URL."
  type        = string
}

variable "efs_file_system_id" {
  description = "Model cache file system."
  type        = string
}

variable "efs_access_point_id" {
  description = "Model cache /models access point."
  type        = string
}

variable "log_level" {
  description = "LOG_LEVEL of the worker."
  type        = string
  default     = "info"
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
