output "identity_arn" {
  description = "ARN of the domain identity (ses:SendEmail resource)."
  value       = aws_sesv2_email_identity.this.arn
}

output "from_address" {
  description = "Sender address (NOTIFY_FROM)."
  value       = "${var.from_local_part}@${var.domain_name}"
}
