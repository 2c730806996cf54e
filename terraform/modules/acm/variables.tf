variable "domain_name" {
  description = "Public domain CloudFront serves (the web app and the API)."
  type        = string
}

variable "regional_names" {
  description = "Names the load balancer answers to (the CloudFront origin, the Temporal Web UI); the first is the certificate's subject."
  type        = list(string)
}

variable "zone_id" {
  description = "Route 53 hosted zone that holds the names and their validation records."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
