variable "name" {
  description = "Name prefix of the user pools and clients."
  type        = string
}

variable "domain_prefix" {
  description = "Hosted UI domain prefix (<prefix>.auth.<region>.amazoncognito.com); the ops pool gets <prefix>-ops."
  type        = string
}

variable "callback_urls" {
  description = "Where the hosted UI may send users back to after sign-in (the web app)."
  type        = list(string)
}

variable "logout_urls" {
  description = "Where the hosted UI may send users back to after sign-out."
  type        = list(string)
}

variable "ops_callback_urls" {
  description = "The load balancer's Cognito callback for the Temporal Web UI (https://<ui host>/oauth2/idpresponse)."
  type        = list(string)
}

variable "ses_identity_arn" {
  description = "SES identity Cognito sends mail through; empty to use Cognito's own mailer (50 mails a day)."
  type        = string
  default     = ""
}

variable "from_email_address" {
  description = "Sender of Cognito's mails when ses_identity_arn is set."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
