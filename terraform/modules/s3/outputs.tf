output "images_bucket" {
  description = "The images bucket: id, arn and regional_domain_name."
  value = {
    id                   = aws_s3_bucket.this["images"].id
    arn                  = aws_s3_bucket.this["images"].arn
    regional_domain_name = aws_s3_bucket.this["images"].bucket_regional_domain_name
  }
}

output "models_bucket" {
  description = "The models bucket: id, arn and regional_domain_name."
  value = {
    id                   = aws_s3_bucket.this["models"].id
    arn                  = aws_s3_bucket.this["models"].arn
    regional_domain_name = aws_s3_bucket.this["models"].bucket_regional_domain_name
  }
}

output "frontend_bucket" {
  description = "The frontend bucket: id, arn and regional_domain_name."
  value = {
    id                   = aws_s3_bucket.this["frontend"].id
    arn                  = aws_s3_bucket.this["frontend"].arn
    regional_domain_name = aws_s3_bucket.this["frontend"].bucket_regional_domain_name
  }
}

output "images_metrics_filter" {
  description = "Name of the images bucket's request-metrics filter (the FilterId dimension)."
  value       = aws_s3_bucket_metric.images.name
}
