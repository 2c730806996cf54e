variable "name" {
  description = "Prefix of the secret names (<name>/<secret>)."
  type        = string
}

variable "database" {
  description = "Easel's PostgreSQL: host, port, database name, the owner's and the API login's credentials."
  type = object({
    host           = string
    port           = number
    name           = string
    owner_username = string
    owner_password = string
    api_username   = string
    api_password   = string
  })
  sensitive = true
}

variable "redis" {
  description = "Redis primary endpoint, port and AUTH token."
  type = object({
    host       = string
    port       = number
    auth_token = string
  })
  sensitive = true
}

variable "temporal_db_password" {
  description = "Password of Temporal's database user."
  type        = string
  sensitive   = true
}

variable "cloudfront_private_key_pem" {
  description = "Private key that signs /images/* URLs."
  type        = string
  sensitive   = true
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can be restored."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
