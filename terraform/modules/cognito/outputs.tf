output "user_pool_id" {
  description = "ID of the users' pool."
  value       = aws_cognito_user_pool.users.id
}

output "issuer" {
  description = "OIDC issuer of the users' ID tokens (OIDC_ISSUER)."
  value       = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.users.id}"
}

output "web_client_id" {
  description = "App client of the web app: the ID tokens' audience (OIDC_AUDIENCE)."
  value       = aws_cognito_user_pool_client.web.id
}

output "hosted_ui_domain" {
  description = "Hosted UI domain of the users' pool."
  value       = "${aws_cognito_user_pool_domain.users.domain}.auth.${data.aws_region.current.name}.amazoncognito.com"
}

output "ops_user_pool_id" {
  description = "ID of the operators' pool (add operators with aws cognito-idp admin-create-user)."
  value       = aws_cognito_user_pool.ops.id
}

output "ops_user_pool_arn" {
  description = "ARN of the operators' pool."
  value       = aws_cognito_user_pool.ops.arn
}

output "ops_client_id" {
  description = "App client the load balancer authenticates operators with."
  value       = aws_cognito_user_pool_client.ops.id
}

output "ops_domain" {
  description = "Hosted UI domain prefix of the operators' pool."
  value       = aws_cognito_user_pool_domain.ops.domain
}
