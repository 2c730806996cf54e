output "asg_name" {
  description = "Name of the tier's Auto Scaling group (the control worker's AUTOSCALE_GROUPS; the dashboards)."
  value       = aws_autoscaling_group.this.name
}

output "spot_asg_name" {
  description = "Name of the tier's spot group, null without one (the control worker's AUTOSCALE_SPOT_GROUPS)."
  value       = var.spot ? aws_autoscaling_group.spot[0].name : null
}

output "service_name" {
  description = "Name of the tier's daemon service."
  value       = aws_ecs_service.this.name
}

output "queue_surge_policy_arn" {
  description = "Scaling policy that adds three hosts (the queue-depth alarm's action)."
  value       = aws_autoscaling_policy.queue_surge.arn
}
