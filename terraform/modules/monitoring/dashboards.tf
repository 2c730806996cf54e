# The deployment guide's four dashboard groups (section 8.1) in CloudWatch. The same
# groups exist for Grafana over Prometheus in deploy/grafana/dashboards.
# Easel-namespace metrics come from the services' /metrics through the
# collector (EMF); CWAgent metrics from the CloudWatch agent on GPU hosts.

locals {
  alb = ["LoadBalancer", var.alb_arn_suffix, "TargetGroup", var.api_target_group_arn_suffix]

  widget = {
    for k, w in {
      # API: request count, latency p50/p90/p99, 4xx/5xx, active connections.
      api_requests = {
        title   = "Requests"
        stat    = "Sum"
        metrics = [concat(["AWS/ApplicationELB", "RequestCount"], local.alb, [{ label = "requests" }])]
      }
      api_latency = {
        title = "Latency p50 / p90 / p99 (to first byte)"
        stat  = "p50"
        metrics = [
          concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb, [{ stat = "p50", label = "p50" }]),
          concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb, [{ stat = "p90", label = "p90" }]),
          concat(["AWS/ApplicationELB", "TargetResponseTime"], local.alb, [{ stat = "p99", label = "p99" }]),
        ]
      }
      api_errors = {
        title = "Error rate (%)"
        stat  = "Sum"
        metrics = [
          concat(["AWS/ApplicationELB", "RequestCount"], local.alb, [{ id = "requests", visible = false }]),
          concat(["AWS/ApplicationELB", "HTTPCode_Target_4XX_Count"], local.alb, [{ id = "t4xx", visible = false }]),
          concat(["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"], local.alb, [{ id = "t5xx", visible = false }]),
          [{ expression = "100 * FILL(t4xx, 0) / requests", label = "4xx %", id = "e4xx" }],
          [{ expression = "100 * FILL(t5xx, 0) / requests", label = "5xx %", id = "e5xx" }],
        ]
      }
      api_connections = {
        title   = "Active connections"
        stat    = "Sum"
        metrics = [["AWS/ApplicationELB", "ActiveConnectionCount", "LoadBalancer", var.alb_arn_suffix, { label = "connections" }]]
      }
      # GPU: utilization, memory, job time, queue depth (the control
      # worker's autoscaler exports the backlog and its age).
      gpu_utilization = {
        title   = "GPU utilization (%)"
        stat    = "Average"
        metrics = [for t, g in var.gpu_tiers : ["CWAgent", "nvidia_smi_utilization_gpu", "AutoScalingGroupName", g.asg_name, { label = t }]]
      }
      gpu_memory = {
        title   = "GPU memory used (MiB)"
        stat    = "Average"
        metrics = [for t, g in var.gpu_tiers : ["CWAgent", "nvidia_smi_memory_used", "AutoScalingGroupName", g.asg_name, { label = t }]]
      }
      gpu_job_time = {
        title   = "Render time per image (s, mean)"
        stat    = "Average"
        metrics = [for t, g in var.gpu_tiers : ["Easel", "easel_render_seconds", "tier", t, { label = t }]]
      }
      gpu_queue = {
        title   = "Queue depth (renders waiting)"
        stat    = "Maximum"
        metrics = [for t, g in var.gpu_tiers : ["Easel", "easel_queue_backlog", "tier", t, { label = t }]]
      }
      gpu_queue_age = {
        title   = "Oldest waiting render (s)"
        stat    = "Maximum"
        metrics = [for t, g in var.gpu_tiers : ["Easel", "easel_queue_backlog_age_seconds", "tier", t, { label = t }]]
      }
      gpu_hosts = {
        title   = "GPU hosts in service"
        stat    = "Maximum"
        metrics = [for t, g in var.gpu_tiers : ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", g.asg_name, { label = t }]]
      }
      # Business: active users, images per hour, credit use, MRR. The API
      # exports the business gauges (every API task the same figures, read
      # from the database); sign-ins come from Cognito.
      business_signins = {
        title   = "Sign-ins per hour (Cognito)"
        stat    = "Sum"
        period  = 3600
        metrics = [["AWS/Cognito", "SignInSuccesses", "UserPool", var.cognito_user_pool_id, "UserPoolClient", var.cognito_client_id, { label = "sign-ins" }]]
      }
      business_active_users = {
        title   = "Active users (generated an image in the last 24 h)"
        stat    = "Maximum"
        period  = 300
        metrics = [["Easel", "easel_active_users", "TaskDefinitionFamily", "${var.name}-api", { label = "active users" }]]
      }
      business_mrr = {
        title  = "MRR (USD)"
        stat   = "Maximum"
        period = 300
        metrics = [
          ["Easel", "easel_mrr_cents", "TaskDefinitionFamily", "${var.name}-api", { id = "mrr_cents", visible = false }],
          [{ expression = "mrr_cents / 100", label = "MRR", id = "mrr" }],
        ]
      }
      business_past_due = {
        title   = "Past-due subscriptions"
        stat    = "Maximum"
        period  = 300
        metrics = [["Easel", "easel_subscriptions_past_due", "TaskDefinitionFamily", "${var.name}-api", { label = "past due" }]]
      }
      business_images = {
        title   = "Images generated per hour"
        stat    = "Sum"
        period  = 3600
        metrics = [for t, g in var.gpu_tiers : ["Easel", "easel_images_generated_total", "tier", t, { label = t }]]
      }
      business_credits = {
        title   = "Credits used per hour"
        stat    = "Sum"
        period  = 3600
        metrics = [["Easel", "easel_credits_settled_total", "TaskDefinitionFamily", "${var.name}-control-worker", { label = "credits" }]]
      }
      # Infrastructure: ECS CPU/memory, RDS connections, Redis memory, S3 size.
      infra_ecs_cpu = {
        title   = "ECS CPU by service (%)"
        stat    = "Average"
        metrics = [[{ expression = "SEARCH('{AWS/ECS,ClusterName,ServiceName} MetricName=\"CPUUtilization\" ClusterName=\"${var.cluster_name}\"', 'Average', 300)", id = "cpu" }]]
      }
      infra_ecs_memory = {
        title   = "ECS memory by service (%)"
        stat    = "Average"
        metrics = [[{ expression = "SEARCH('{AWS/ECS,ClusterName,ServiceName} MetricName=\"MemoryUtilization\" ClusterName=\"${var.cluster_name}\"', 'Average', 300)", id = "memory" }]]
      }
      infra_rds = {
        title   = "RDS connections"
        stat    = "Maximum"
        metrics = [for k, db in var.rds_instances : ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", db.identifier, { label = k }]]
      }
      infra_redis = {
        title   = "Redis memory (%)"
        stat    = "Maximum"
        metrics = [for id in var.redis_node_ids : ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", id, { label = id }]]
      }
      infra_s3 = {
        title  = "S3 images bucket size"
        stat   = "Average"
        period = 86400
        metrics = [
          ["AWS/S3", "BucketSizeBytes", "BucketName", var.images_bucket_name, "StorageType", "StandardStorage", { label = "Standard" }],
          ["AWS/S3", "BucketSizeBytes", "BucketName", var.images_bucket_name, "StorageType", "StandardIAStorage", { label = "Standard-IA" }],
        ]
      }
      } : k => {
      type   = "metric"
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = w.stat
        period  = lookup(w, "period", 60)
        metrics = w.metrics
      }
    }
  }

  dashboards = {
    api            = ["api_requests", "api_latency", "api_errors", "api_connections"]
    gpu            = ["gpu_utilization", "gpu_memory", "gpu_job_time", "gpu_queue", "gpu_queue_age", "gpu_hosts"]
    business       = ["business_active_users", "business_signins", "business_images", "business_credits", "business_mrr", "business_past_due"]
    infrastructure = ["infra_ecs_cpu", "infra_ecs_memory", "infra_rds", "infra_redis", "infra_s3"]
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  for_each = local.dashboards

  dashboard_name = "${var.name}-${each.key}"
  dashboard_body = jsonencode({
    widgets = [
      for i, w in each.value : merge(local.widget[w], { x = (i % 2) * 12, y = floor(i / 2) * 6 })
    ]
  })
}
