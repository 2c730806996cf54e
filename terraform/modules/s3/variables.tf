variable "name" {
  description = "Name prefix of the buckets (the account id is appended for global uniqueness)."
  type        = string
}

variable "images_ia_after_days" {
  description = "Days after which images move to S3 Standard-IA."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days overwritten or deleted object versions are kept."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
