output "distribution_id" {
  description = "ID of the distribution."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  description = "ARN of the distribution (the deploy role may invalidate it)."
  value       = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "CloudFront domain name of the distribution (alias target)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "hosted_zone_id" {
  description = "Route 53 zone id of CloudFront aliases."
  value       = aws_cloudfront_distribution.this.hosted_zone_id
}

output "images_key_group_id" {
  description = "Key group trusted for /images/* signed URLs."
  value       = aws_cloudfront_key_group.images.id
}

output "images_public_key_id" {
  description = "Key pair id to put in /images/* signed URLs (Key-Pair-Id)."
  value       = aws_cloudfront_public_key.images.id
}

output "images_domain" {
  description = "Host name users reach /images/* on (the first alias, else the distribution's *.cloudfront.net name): the host of signed image URLs."
  value       = length(var.aliases) > 0 ? var.aliases[0] : aws_cloudfront_distribution.this.domain_name
}
