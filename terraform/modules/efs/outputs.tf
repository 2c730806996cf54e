output "file_system_id" {
  description = "ID of the file system."
  value       = aws_efs_file_system.this.id
}

output "file_system_arn" {
  description = "ARN of the file system."
  value       = aws_efs_file_system.this.arn
}

output "access_point_id" {
  description = "ID of the /models access point."
  value       = aws_efs_access_point.models.id
}

output "access_point_arn" {
  description = "ARN of the /models access point."
  value       = aws_efs_access_point.models.arn
}
