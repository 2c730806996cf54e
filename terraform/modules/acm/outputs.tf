output "cloudfront_certificate_arn" {
  description = "Validated certificate (us-east-1) for CloudFront."
  value       = aws_acm_certificate_validation.cloudfront.certificate_arn
}

output "regional_certificate_arn" {
  description = "Validated certificate for the load balancer."
  value       = aws_acm_certificate_validation.regional.certificate_arn
}
