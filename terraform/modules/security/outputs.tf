output "alb_sg_id" {
  description = "Security group of the load balancer (sg-alb)."
  value       = aws_security_group.this["alb"].id
}

output "api_sg_id" {
  description = "Security group of the API tasks (sg-api)."
  value       = aws_security_group.this["api"].id
}

output "worker_sg_id" {
  description = "Security group of the control-plane worker and migration tasks."
  value       = aws_security_group.this["worker"].id
}

output "gpu_sg_id" {
  description = "Security group of the GPU hosts and GPU worker tasks (sg-gpu)."
  value       = aws_security_group.this["gpu"].id
}

output "rds_sg_id" {
  description = "Security group of Easel's PostgreSQL (sg-rds)."
  value       = aws_security_group.this["rds"].id
}

output "redis_sg_id" {
  description = "Security group of Redis (sg-redis)."
  value       = aws_security_group.this["redis"].id
}

output "efs_sg_id" {
  description = "Security group of the EFS model cache (sg-efs)."
  value       = aws_security_group.this["efs"].id
}

output "temporal_sg_id" {
  description = "Security group of the Temporal server and Web UI."
  value       = aws_security_group.this["temporal"].id
}

output "temporal_db_sg_id" {
  description = "Security group of Temporal's PostgreSQL."
  value       = aws_security_group.this["temporal_db"].id
}

output "collector_sg_id" {
  description = "Security group of the metrics collector."
  value       = aws_security_group.this["collector"].id
}
