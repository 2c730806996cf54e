variable "name" {
  description = "Replication group id (lowercase, at most 40 characters)."
  type        = string
}

variable "engine_version" {
  description = "Redis version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Node type (the deployment guide's cost table: cache.r6g.large)."
  type        = string
  default     = "cache.r6g.large"
}

variable "num_cache_clusters" {
  description = "Nodes: one primary and the rest replicas."
  type        = number
  default     = 2
}

variable "subnet_ids" {
  description = "Data subnets the nodes may live in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the nodes."
  type        = list(string)
}

variable "auth_token" {
  description = "Redis AUTH token (16 to 128 printable characters)."
  type        = string
  sensitive   = true
}

variable "snapshot_retention_limit" {
  description = "Days daily snapshots are kept."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
