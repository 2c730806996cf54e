variable "name" {
  description = "Name of the web ACL and prefix of its metrics."
  type        = string
}

variable "rate_limit" {
  description = "Requests one IP may make in any 5 minutes before it is blocked (the API's per-plan limits are finer)."
  type        = number
  default     = 3000
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
