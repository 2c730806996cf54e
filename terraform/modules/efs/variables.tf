variable "name" {
  description = "Name of the file system."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets that get a mount target."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the mount targets (sg-efs)."
  type        = list(string)
}

variable "uid" {
  description = "POSIX user every client of the access point acts as."
  type        = number
  default     = 10001
}

variable "gid" {
  description = "POSIX group every client of the access point acts as."
  type        = number
  default     = 10001
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
