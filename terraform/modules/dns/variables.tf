variable "zone_id" {
  description = "Route 53 hosted zone of the domain."
  type        = string
}

variable "domain_name" {
  description = "Public domain, served by CloudFront."
  type        = string
}

variable "cloudfront_domain_name" {
  description = "CloudFront domain name of the distribution."
  type        = string
}

variable "cloudfront_zone_id" {
  description = "Route 53 zone id of CloudFront aliases."
  type        = string
}

variable "alb_names" {
  description = "Names that point at the load balancer."
  type        = list(string)
}

variable "alb_dns_name" {
  description = "DNS name of the load balancer."
  type        = string
}

variable "alb_zone_id" {
  description = "Route 53 zone id of the load balancer."
  type        = string
}
