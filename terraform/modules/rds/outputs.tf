output "address" {
  description = "Host name of the instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.this.port
}

output "identifier" {
  description = "Instance identifier (the DBInstanceIdentifier dimension of its metrics)."
  value       = aws_db_instance.this.identifier
}

output "db_name" {
  description = "Database created with the instance."
  value       = aws_db_instance.this.db_name
}

output "max_connections" {
  description = "max_connections of the instance."
  value       = var.max_connections
}
