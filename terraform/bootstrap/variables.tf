variable "region" {
  description = "Region of the state bucket (the stack's region)."
  type        = string
  default     = "ap-northeast-2"
}

variable "bucket_prefix" {
  description = "Name of the state bucket before the account id."
  type        = string
  default     = "easel-terraform-state"
}
