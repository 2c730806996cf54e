# Where alarms go (seed 8.2 "action"): pagerduty (Critical) and slack (High,
# Medium). PagerDuty's CloudWatch integration gives an HTTPS endpoint that
# confirms itself; Slack gets the mails of a channel's e-mail address (or
# point AWS Chatbot at the topic). Both CloudWatch alarms and the managed
# Prometheus's Alertmanager publish here.

data "aws_caller_identity" "current" {}

resource "aws_sns_topic" "this" {
  for_each = toset(["pagerduty", "slack"])

  # Not encrypted with the AWS-managed SNS key: CloudWatch alarms cannot
  # publish to topics under it, and alarm texts carry no secrets.
  name = "${var.name}-alarms-${each.key}"

  tags = var.tags
}

data "aws_iam_policy_document" "topic" {
  for_each = aws_sns_topic.this

  statement {
    sid       = "AlarmSources"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [each.value.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "aps.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = aws_sns_topic.this

  arn    = each.value.arn
  policy = data.aws_iam_policy_document.topic[each.key].json
}

resource "aws_sns_topic_subscription" "pagerduty" {
  count = nonsensitive(var.pagerduty_endpoint != "") ? 1 : 0

  topic_arn              = aws_sns_topic.this["pagerduty"].arn
  protocol               = "https"
  endpoint               = var.pagerduty_endpoint
  endpoint_auto_confirms = true
}

resource "aws_sns_topic_subscription" "slack" {
  count = var.slack_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.this["slack"].arn
  protocol  = "email"
  endpoint  = var.slack_email
}
