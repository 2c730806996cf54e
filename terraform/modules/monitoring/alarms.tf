# The deployment guide's alarms (section 8.2) as CloudWatch alarms, each routed as the
# seed says: Critical -> PagerDuty, High and Medium -> Slack (through the two
# SNS topics). Alarm resource names are the rows of the table
# (go test ./deploy/ checks that every row has one):
#
#   API Error Rate      > 5% (5 min)      Critical  api_error_rate
#   API Latency         P99 > 5 s         High      api_latency_p99
#   GPU Queue Depth     > 100             High      gpu_queue_depth (+ scale out)
#   RDS CPU             > 80% (10 min)    High      rds_cpu
#   RDS Connections     > 80% max         Critical  rds_connections
#   Redis Memory        > 80%             Medium    redis_memory
#   S3 Error Rate       > 1%              Medium    s3_error_rate
#   Credit Balance Low  credits < 10      Info      not an alarm: the control worker
#                                                   e-mails the user (notify.LowBalance,
#                                                   NOTIFY_SENDER=ses)

locals {
  pagerduty = [aws_sns_topic.this["pagerduty"].arn]
  slack     = [aws_sns_topic.this["slack"].arn]
}

resource "aws_cloudwatch_metric_alarm" "api_error_rate" {
  alarm_name          = "${var.name}-api-error-rate"
  alarm_description   = "Seed 8.2 API Error Rate (critical): more than 5% of API requests answered 5xx (by the API or by the load balancer) for 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.pagerduty
  ok_actions          = local.pagerduty

  metric_query {
    id          = "error_rate"
    label       = "5xx (%)"
    expression  = "IF(requests > 0, 100 * (FILL(target_5xx, 0) + FILL(elb_5xx, 0)) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.api_target_group_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "target_5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.api_target_group_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "elb_5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  tags = merge(var.tags, { SeedAlarm = "API Error Rate", Severity = "critical" })
}

resource "aws_cloudwatch_metric_alarm" "api_latency_p99" {
  alarm_name          = "${var.name}-api-latency-p99"
  alarm_description   = "Seed 8.2 API Latency (high): p99 time to first response byte above 5 s for 5 minutes. Event streams count until their headers, not their whole life."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.api_target_group_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.slack
  ok_actions          = local.slack

  tags = merge(var.tags, { SeedAlarm = "API Latency", Severity = "high" })
}

# easel_queue_backlog{tier} is exported by the control worker while it runs
# the GPU autoscaler (AUTOSCALE_DRIVER=ec2, as deploy/ecs/control-worker.json
# sets it), together with easel_queue_backlog_age_seconds{tier} and
# easel_gpu_hosts{tier}, at every autoscaler poll; it reaches CloudWatch
# through the collector (deploy/otel/collector.yaml, namespace Easel).
# Should the autoscaler be off, the alarm has no data and stays OK.
resource "aws_cloudwatch_metric_alarm" "gpu_queue_depth" {
  for_each = var.gpu_tiers

  alarm_name          = "${var.name}-gpu-queue-depth-${each.key}"
  alarm_description   = "Seed 8.2 GPU Queue Depth (high): more than 100 renders waiting on gpu-${each.key}. Adds three hosts to the tier and notifies."
  namespace           = "Easel"
  metric_name         = "easel_queue_backlog"
  dimensions          = { tier = each.key }
  statistic           = "Maximum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = 100
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = concat(local.slack, [each.value.scale_out_policy_arn])
  ok_actions          = local.slack

  tags = merge(var.tags, { SeedAlarm = "GPU Queue Depth", Severity = "high" })
}

resource "aws_cloudwatch_metric_alarm" "rds_cpu" {
  for_each = var.rds_instances

  alarm_name          = "${var.name}-rds-cpu-${each.key}"
  alarm_description   = "Seed 8.2 RDS CPU (high): ${each.value.identifier} above 80% CPU for 10 minutes."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = each.value.identifier }
  statistic           = "Average"
  period              = 300
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "missing"
  alarm_actions       = local.slack
  ok_actions          = local.slack

  tags = merge(var.tags, { SeedAlarm = "RDS CPU", Severity = "high" })
}

resource "aws_cloudwatch_metric_alarm" "rds_connections" {
  for_each = var.rds_instances

  alarm_name          = "${var.name}-rds-connections-${each.key}"
  alarm_description   = "Seed 8.2 RDS Connections (critical): ${each.value.identifier} above 80% of max_connections (${each.value.max_connections})."
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = each.value.identifier }
  statistic           = "Maximum"
  period              = 60
  comparison_operator = "GreaterThanThreshold"
  threshold           = floor(each.value.max_connections * 0.8)
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "missing"
  alarm_actions       = local.pagerduty
  ok_actions          = local.pagerduty

  tags = merge(var.tags, { SeedAlarm = "RDS Connections", Severity = "critical" })
}

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  for_each = toset(var.redis_node_ids)

  alarm_name          = "${var.name}-redis-memory-${each.key}"
  alarm_description   = "Seed 8.2 Redis Memory (medium): ${each.key} uses more than 80% of its memory."
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { CacheClusterId = each.key }
  statistic           = "Maximum"
  period              = 300
  comparison_operator = "GreaterThanThreshold"
  threshold           = 80
  evaluation_periods  = 1
  treat_missing_data  = "missing"
  alarm_actions       = local.slack
  ok_actions          = local.slack

  tags = merge(var.tags, { SeedAlarm = "Redis Memory", Severity = "medium" })
}

# 5xx only: users fetch images with presigned URLs, and expired or mistyped
# URLs are 4xx that say nothing about S3's health.
resource "aws_cloudwatch_metric_alarm" "s3_error_rate" {
  alarm_name          = "${var.name}-s3-error-rate"
  alarm_description   = "Seed 8.2 S3 Error Rate (medium): more than 1% of requests to the images bucket fail with 5xx over 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.slack
  ok_actions          = local.slack

  metric_query {
    id          = "error_rate"
    label       = "5xx (%)"
    expression  = "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/S3"
      metric_name = "AllRequests"
      dimensions  = { BucketName = var.images_bucket_name, FilterId = var.images_metrics_filter }
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/S3"
      metric_name = "5xxErrors"
      dimensions  = { BucketName = var.images_bucket_name, FilterId = var.images_metrics_filter }
      period      = 300
      stat        = "Sum"
    }
  }

  tags = merge(var.tags, { SeedAlarm = "S3 Error Rate", Severity = "medium" })
}
