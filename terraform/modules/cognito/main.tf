# Sign-in (seed section 1: Cognito). Two user pools:
#   users - the product's users. The web app signs in through the hosted UI
#           (authorization code + PKCE, public client, no secret) and sends
#           the ID token; the API verifies it against the pool's JWKS
#           (OIDC_ISSUER = the pool's issuer, OIDC_AUDIENCE = the client id).
#   ops   - operators of the Temporal Web UI, created by an administrator
#           only, MFA required; the load balancer authenticates them
#           (confidential client) before forwarding to the UI.

data "aws_region" "current" {}

resource "aws_cognito_user_pool" "users" {
  name                     = "${var.name}-users"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = "ACTIVE"
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 7
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  username_configuration {
    case_sensitive = false
  }

  # Cognito's own mailer sends 50 mails a day; production sends through the
  # SES domain identity.
  dynamic "email_configuration" {
    for_each = var.ses_identity_arn == "" ? [] : [var.ses_identity_arn]

    content {
      email_sending_account = "DEVELOPER"
      source_arn            = email_configuration.value
      from_email_address    = var.from_email_address
    }
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_domain" "users" {
  domain       = var.domain_prefix
  user_pool_id = aws_cognito_user_pool.users.id
}

resource "aws_cognito_user_pool_client" "web" {
  name         = "${var.name}-web"
  user_pool_id = aws_cognito_user_pool.users.id

  generate_secret                      = false
  explicit_auth_flows                  = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email", "profile"]
  callback_urls                        = var.callback_urls
  logout_urls                          = var.logout_urls
  supported_identity_providers         = ["COGNITO"]
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true

  id_token_validity      = 60
  access_token_validity  = 60
  refresh_token_validity = 30

  token_validity_units {
    id_token      = "minutes"
    access_token  = "minutes"
    refresh_token = "days"
  }
}

resource "aws_cognito_user_pool" "ops" {
  name                     = "${var.name}-ops"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = "ACTIVE"
  mfa_configuration        = "ON"

  software_token_mfa_configuration {
    enabled = true
  }

  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "admin_only"
      priority = 1
    }
  }

  tags = var.tags
}

resource "aws_cognito_user_pool_domain" "ops" {
  domain       = "${var.domain_prefix}-ops"
  user_pool_id = aws_cognito_user_pool.ops.id
}

resource "aws_cognito_user_pool_client" "ops" {
  name         = "${var.name}-temporal-ui"
  user_pool_id = aws_cognito_user_pool.ops.id

  generate_secret                      = true
  explicit_auth_flows                  = ["ALLOW_REFRESH_TOKEN_AUTH"]
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email"]
  callback_urls                        = var.ops_callback_urls
  supported_identity_providers         = ["COGNITO"]
  prevent_user_existence_errors        = "ENABLED"
}
