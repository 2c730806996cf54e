output "public_fqdn" {
  description = "The public name."
  value       = aws_route53_record.public["A"].fqdn
}
