# Route 53 names: the public domain on CloudFront (IPv4 and IPv6), and the
# load balancer's names (the origin CloudFront connects to, the Temporal Web
# UI).

resource "aws_route53_record" "public" {
  for_each = toset(["A", "AAAA"])

  zone_id = var.zone_id
  name    = var.domain_name
  type    = each.value

  alias {
    name                   = var.cloudfront_domain_name
    zone_id                = var.cloudfront_zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "alb" {
  for_each = toset(var.alb_names)

  zone_id = var.zone_id
  name    = each.value
  type    = "A"

  alias {
    name                   = var.alb_dns_name
    zone_id                = var.alb_zone_id
    evaluate_target_health = true
  }
}
