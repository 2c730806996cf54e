# The sending domain for users' e-mail: the deployment guide's "credit balance low ->
# e-mail to the user" (notify.LowBalance in the control worker, with
# NOTIFY_SENDER=ses) and Cognito's verification and reset mails. DKIM
# records go into the Route 53 zone. New SES accounts are in the sandbox:
# request production access before launch (docs/deploy.md).

resource "aws_sesv2_email_identity" "this" {
  email_identity = var.domain_name

  tags = var.tags
}

resource "aws_route53_record" "dkim" {
  count = 3

  zone_id = var.zone_id
  name    = "${aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens[count.index]}._domainkey.${var.domain_name}"
  type    = "CNAME"
  ttl     = 1800
  records = ["${aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens[count.index]}.dkim.amazonses.com"]
}
