variable "name" {
  description = "Name prefix of the distribution's policies, functions and keys."
  type        = string
}

variable "aliases" {
  description = "Public names of the distribution (covered by certificate_arn)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate in us-east-1 for the aliases."
  type        = string
}

variable "web_acl_arn" {
  description = "WAF web ACL (scope CLOUDFRONT) in front of the distribution."
  type        = string
}

variable "price_class" {
  description = "Edge locations used (PriceClass_200 includes Korea and Japan)."
  type        = string
  default     = "PriceClass_200"
}

variable "images_bucket" {
  description = "Images bucket: id, arn, regional_domain_name."
  type = object({
    id                   = string
    arn                  = string
    regional_domain_name = string
  })
}

variable "frontend_bucket" {
  description = "Frontend bucket: id, arn, regional_domain_name."
  type = object({
    id                   = string
    arn                  = string
    regional_domain_name = string
  })
}

variable "api_origin_domain" {
  description = "Name of the load balancer CloudFront connects to over HTTPS (covered by the load balancer's certificate)."
  type        = string
}

variable "origin_verify_header" {
  description = "Header CloudFront adds to API requests; the load balancer forwards only requests that carry it."
  type        = string
  default     = "X-Origin-Verify"
}

variable "origin_verify_secret" {
  description = "Value of origin_verify_header."
  type        = string
  sensitive   = true
}

variable "signing_public_key_pem" {
  description = "PEM public key that verifies signed /images/* URLs."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
