output "state_bucket" {
  description = "Put this in environments/<env>/backend.hcl as bucket."
  value       = aws_s3_bucket.state.id
}
