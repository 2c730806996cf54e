output "frontend_address" {
  description = "Temporal frontend host:port for Easel (TEMPORAL_ADDRESS)."
  value       = local.frontend
}

output "namespace" {
  description = "Temporal namespace (TEMPORAL_NAMESPACE)."
  value       = var.namespace
}

output "ui_url" {
  description = "Temporal Web UI."
  value       = "https://${var.ui_host}"
}

output "setup_task_family" {
  description = "Task family of the one-shot setup (schema, namespace, search attributes)."
  value       = aws_ecs_task_definition.setup.family
}

output "server_service_name" {
  description = "Name of the server service."
  value       = aws_ecs_service.server.name
}
