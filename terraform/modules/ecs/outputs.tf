output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "api_service_name" {
  description = "Name of the API service."
  value       = aws_ecs_service.api.name
}

output "control_worker_service_name" {
  description = "Name of the control worker service."
  value       = aws_ecs_service.control_worker.name
}

output "migrate_task_family" {
  description = "Task family of the one-shot migration."
  value       = aws_ecs_task_definition.this["migrate"].family
}

output "db_bootstrap_task_family" {
  description = "Task family of the one-shot database bootstrap."
  value       = aws_ecs_task_definition.db_bootstrap.family
}

output "alb_arn_suffix" {
  description = "ARN suffix of the load balancer (the LoadBalancer dimension of its metrics)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 zone id of the load balancer."
  value       = aws_lb.this.zone_id
}

output "https_listener_arn" {
  description = "HTTPS listener, for other services' rules."
  value       = aws_lb_listener.https.arn
}

output "api_target_group_arn_suffix" {
  description = "ARN suffix of the API target group (the TargetGroup dimension)."
  value       = aws_lb_target_group.api.arn_suffix
}
