# Amazon Managed Service for Prometheus: the collector writes every series
# of the services' /metrics here, the alert rules of
# deploy/prometheus/alerts.yml evaluate here, and its Alertmanager sends
# severity=critical to the PagerDuty topic and everything else to Slack.
# Grafana (Amazon Managed Grafana or any other) reads it with SigV4; import
# deploy/grafana/dashboards/*.json.

resource "aws_prometheus_workspace" "this" {
  alias = var.name

  tags = var.tags
}

resource "aws_prometheus_rule_group_namespace" "easel" {
  name         = "easel"
  workspace_id = aws_prometheus_workspace.this.id
  data         = file("${path.module}/../../../deploy/prometheus/alerts.yml")
}

resource "aws_prometheus_alert_manager_definition" "this" {
  workspace_id = aws_prometheus_workspace.this.id
  definition = yamlencode({
    alertmanager_config = yamlencode({
      route = {
        receiver        = "slack"
        group_by        = ["alertname", "tier"]
        group_wait      = "30s"
        group_interval  = "5m"
        repeat_interval = "4h"
        routes = [{
          receiver = "pagerduty"
          matchers = ["severity=\"critical\""]
        }]
      }
      receivers = [
        for r in ["pagerduty", "slack"] : {
          name = r
          sns_configs = [{
            topic_arn = aws_sns_topic.this[r].arn
            subject   = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}"
            sigv4     = { region = var.region }
          }]
        }
      ]
    })
  })
}
