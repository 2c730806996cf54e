output "prometheus_workspace_id" {
  description = "Managed Prometheus workspace."
  value       = aws_prometheus_workspace.this.id
}

output "prometheus_endpoint" {
  description = "Query endpoint of the workspace (Grafana's Prometheus data source, SigV4)."
  value       = aws_prometheus_workspace.this.prometheus_endpoint
}

output "alarm_topic_arns" {
  description = "SNS topics of the alarms (pagerduty, slack)."
  value       = { for k, t in aws_sns_topic.this : k => t.arn }
}

output "dashboard_names" {
  description = "CloudWatch dashboards."
  value       = [for d in aws_cloudwatch_dashboard.this : d.dashboard_name]
}
