# The deployment guide's buckets (section 7.1): users' images (users/<uid>/images/...,
# thumbnails, uploads; to Standard-IA after 30 days, section 10.2), models
# (shared and per-user weights) and the web frontend. All private, owner
# enforced, encrypted, TLS only; CloudFront reads images and the frontend
# through origin access control (bucket policies in the cloudfront module).

data "aws_caller_identity" "current" {}

locals {
  buckets = {
    images   = "${var.name}-images-${data.aws_caller_identity.current.account_id}"
    models   = "${var.name}-models-${data.aws_caller_identity.current.account_id}"
    frontend = "${var.name}-frontend-${data.aws_caller_identity.current.account_id}"
  }
}

resource "aws_s3_bucket" "this" {
  for_each = local.buckets

  bucket        = each.value
  force_destroy = false

  tags = merge(var.tags, { Name = each.value, Content = each.key })
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "images" {
  bucket = aws_s3_bucket.this["images"].id

  # Objects under 128 KB (most thumbnails) stay in Standard, where they are
  # cheaper than Standard-IA's 128 KB minimum charge.
  transition_default_minimum_object_size = "all_storage_classes_128K"

  rule {
    id     = "infrequent-access"
    status = "Enabled"

    filter {
      prefix = "users/"
    }

    transition {
      days          = var.images_ia_after_days
      storage_class = "STANDARD_IA"
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "versions" {
  for_each = toset(["models", "frontend"])

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

# Request metrics of the images bucket feed the S3 error-rate alarm.
resource "aws_s3_bucket_metric" "images" {
  bucket = aws_s3_bucket.this["images"].id
  name   = "EntireBucket"
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this["models"].arn,
      "${aws_s3_bucket.this["models"].arn}/*",
    ]

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

resource "aws_s3_bucket_policy" "models" {
  bucket = aws_s3_bucket.this["models"].id
  policy = data.aws_iam_policy_document.tls_only.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
