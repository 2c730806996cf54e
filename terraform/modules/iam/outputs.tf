output "execution_role_arns" {
  description = "Task execution role ARN by workload (api, worker, gpu)."
  value       = { for k, r in aws_iam_role.execution : k => r.arn }
}

output "task_role_arns" {
  description = "Task role ARN by workload (api, worker, gpu)."
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "gpu_instance_profile_arn" {
  description = "Instance profile of the GPU hosts."
  value       = aws_iam_instance_profile.gpu.arn
}
