# The CDN of the deployment guide's section 7.2, behind AWS WAF:
#
#   /api/*        -> ALB, no cache (the deployment guide's API prefix: /api/v1/app/version)
#   /v1/*         -> ALB, no cache (Easel's API routes live under /v1)
#   /config.json  -> ALB, no cache (the app's settings, from the API's environment)
#   /images/*     -> images bucket, cached a year, signed URLs (trusted key group)
#   /static/*     -> frontend bucket, cached a year (the build's hashed files)
#   /*            -> frontend bucket, cached an hour (single-page app)
#
# The load balancer accepts only requests carrying the secret origin header
# CloudFront adds, so nobody reaches the API around the WAF.

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

resource "aws_cloudfront_cache_policy" "year" {
  name        = "${var.name}-one-year"
  comment     = "Immutable objects: images, hashed static assets"
  min_ttl     = 0
  default_ttl = 31536000
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }

    headers_config {
      header_behavior = "none"
    }

    # Signed URLs' Expires, Signature and Key-Pair-Id stay out of the key.
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_cache_policy" "hour" {
  name        = "${var.name}-one-hour"
  comment     = "The single-page app's documents"
  min_ttl     = 0
  default_ttl = 3600
  max_ttl     = 3600

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }

    headers_config {
      header_behavior = "none"
    }

    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

resource "aws_cloudfront_origin_access_control" "s3" {
  name                              = "${var.name}-s3"
  description                       = "CloudFront reads the images and frontend buckets"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Signed URLs for /images/*: the private key is in Secrets Manager (secrets
# module); whoever signs URLs uses it with this public key's id.
resource "aws_cloudfront_public_key" "images" {
  name        = "${var.name}-images"
  comment     = "Verifies signed URLs for /images/*"
  encoded_key = var.signing_public_key_pem
}

resource "aws_cloudfront_key_group" "images" {
  name    = "${var.name}-images"
  comment = "Signers of /images/* URLs"
  items   = [aws_cloudfront_public_key.images.id]
}

# /images/users/<uid>/images/<name>.png -> users/<uid>/images/<name>.png
resource "aws_cloudfront_function" "strip_images_prefix" {
  name    = "${var.name}-strip-images-prefix"
  runtime = "cloudfront-js-2.0"
  comment = "Map /images/<key> to the bucket key"
  publish = true
  code    = <<-EOT
    function handler(event) {
      var request = event.request;
      request.uri = request.uri.replace(/^\/images\//, "/");
      return request;
    }
  EOT
}

# A signed /images/* URL with ?download=<file name> (the API's download_url)
# is answered as an attachment, so browsers save the picture rather than
# show it (they ignore <a download> on another origin). The query string is
# not in the cache key (nor sent to the bucket): both kinds of link share
# one cached object, and the header is added on the way out.
resource "aws_cloudfront_function" "images_download" {
  name    = "${var.name}-images-download"
  runtime = "cloudfront-js-2.0"
  comment = "Content-Disposition: attachment for ?download=<file name>"
  publish = true
  code    = <<-EOT
    function handler(event) {
      var response = event.response;
      var download = event.request.querystring.download;
      var ok = response.statusCode >= 200 && response.statusCode < 300;
      if (ok && download && /^[A-Za-z0-9._-]{1,200}$/.test(download.value)) {
        response.headers["content-disposition"] = { value: 'attachment; filename="' + download.value + '"' };
      }
      return response;
    }
  EOT
}

# Paths without a file extension are app routes: serve the app's index.
resource "aws_cloudfront_function" "spa" {
  name    = "${var.name}-spa-index"
  runtime = "cloudfront-js-2.0"
  comment = "Serve index.html for single-page app routes"
  publish = true
  code    = <<-EOT
    function handler(event) {
      var request = event.request;
      var last = request.uri.split("/").pop();
      if (last.indexOf(".") === -1) {
        request.uri = "/index.html";
      }
      return request;
    }
  EOT
}

resource "aws_cloudfront_distribution" "this" {
  enabled             = true
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  comment             = var.name
  aliases             = var.aliases
  price_class         = var.price_class
  web_acl_id          = var.web_acl_arn
  default_root_object = "index.html"

  origin {
    origin_id                = "frontend"
    domain_name              = var.frontend_bucket.regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.s3.id
  }

  origin {
    origin_id                = "images"
    domain_name              = var.images_bucket.regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.s3.id
  }

  origin {
    origin_id   = "api"
    domain_name = var.api_origin_domain

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = 60
      origin_keepalive_timeout = 60
    }

    custom_header {
      name  = var.origin_verify_header
      value = var.origin_verify_secret
    }
  }

  ordered_cache_behavior {
    path_pattern             = "/api/*"
    target_origin_id         = "api"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    compress                 = true
  }

  ordered_cache_behavior {
    path_pattern             = "/v1/*"
    target_origin_id         = "api"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    compress                 = true
  }

  # The app reads where to sign in (and the Stripe key, the low-balance
  # threshold, Temporal's UI) from the API, not from the bucket.
  ordered_cache_behavior {
    path_pattern             = "/config.json"
    target_origin_id         = "api"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["GET", "HEAD", "OPTIONS"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    compress                 = true
  }

  ordered_cache_behavior {
    path_pattern           = "/images/*"
    target_origin_id       = "images"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    cache_policy_id        = aws_cloudfront_cache_policy.year.id
    trusted_key_groups     = [aws_cloudfront_key_group.images.id]
    compress               = false

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.strip_images_prefix.arn
    }

    function_association {
      event_type   = "viewer-response"
      function_arn = aws_cloudfront_function.images_download.arn
    }
  }

  ordered_cache_behavior {
    path_pattern           = "/static/*"
    target_origin_id       = "frontend"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    cache_policy_id        = aws_cloudfront_cache_policy.year.id
    compress               = true
  }

  default_cache_behavior {
    target_origin_id       = "frontend"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD", "OPTIONS"]
    cached_methods         = ["GET", "HEAD"]
    cache_policy_id        = aws_cloudfront_cache_policy.hour.id
    compress               = true

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.spa.arn
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = var.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  tags = var.tags
}

# The two buckets answer only this distribution, and only over TLS.
data "aws_iam_policy_document" "bucket" {
  for_each = {
    images   = var.images_bucket.arn
    frontend = var.frontend_bucket.arn
  }

  statement {
    sid       = "CloudFrontRead"
    actions   = ["s3:GetObject"]
    resources = ["${each.value}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "images" {
  bucket = var.images_bucket.id
  policy = data.aws_iam_policy_document.bucket["images"].json
}

resource "aws_s3_bucket_policy" "frontend" {
  bucket = var.frontend_bucket.id
  policy = data.aws_iam_policy_document.bucket["frontend"].json
}
