output "deploy_role_arn" {
  description = "AWS_ROLE_ARN of the GitHub environment."
  value       = aws_iam_role.deploy.arn
}

output "ecr_read_role_arn" {
  description = "STAGING_ECR_ROLE_ARN of the production GitHub environment (staging's stack only)."
  value       = length(var.read_environments) > 0 ? aws_iam_role.read[0].arn : null
}
