variable "domain_name" {
  description = "Domain mail is sent from."
  type        = string
}

variable "zone_id" {
  description = "Route 53 hosted zone of the domain (DKIM records)."
  type        = string
}

variable "from_local_part" {
  description = "Local part of the sender address."
  type        = string
  default     = "noreply"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
