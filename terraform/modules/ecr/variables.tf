variable "name" {
  description = "Prefix of the repository names (<name>/<repository>)."
  type        = string
}

variable "repositories" {
  description = "Repositories to create."
  type        = list(string)
  default     = ["api", "gpu-worker", "temporal"]
}

variable "keep_images" {
  description = "Images kept per repository."
  type        = number
  default     = 50
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
