# The metrics collector: AWS Distro for OpenTelemetry on Fargate with the
# configuration in deploy/otel/collector.yaml. It discovers the cluster's
# tasks by their PROMETHEUS_* docker labels, scrapes them, remote-writes to
# the Prometheus workspace and sends easel_ series to CloudWatch (EMF).

resource "aws_ssm_parameter" "collector_config" {
  name        = "/${var.name}/otel-collector/config"
  description = "deploy/otel/collector.yaml"
  type        = "String"
  tier        = "Standard"
  value       = file("${path.module}/../../../deploy/otel/collector.yaml")

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "collector" {
  name              = "/ecs/${var.name}/otel-collector"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

# EMF documents become metrics in the Easel namespace; the documents
# themselves are not worth keeping long.
resource "aws_cloudwatch_log_group" "emf" {
  name              = "/${var.name}/metrics"
  retention_in_days = 3

  tags = var.tags
}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "collector_execution" {
  name               = "${var.name}-collector-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "collector_execution" {
  role       = aws_iam_role.collector_execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "collector_execution" {
  statement {
    actions   = ["ssm:GetParameters"]
    resources = [aws_ssm_parameter.collector_config.arn]
  }
}

resource "aws_iam_role_policy" "collector_execution" {
  name   = "config"
  role   = aws_iam_role.collector_execution.id
  policy = data.aws_iam_policy_document.collector_execution.json
}

resource "aws_iam_role" "collector" {
  name               = "${var.name}-collector-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "collector" {
  statement {
    sid       = "RemoteWrite"
    actions   = ["aps:RemoteWrite"]
    resources = [aws_prometheus_workspace.this.arn]
  }

  statement {
    sid = "DiscoverTargets"
    actions = [
      "ecs:ListTasks",
      "ecs:ListServices",
      "ecs:DescribeTasks",
      "ecs:DescribeServices",
      "ecs:DescribeContainerInstances",
      "ecs:DescribeTaskDefinition",
      "ec2:DescribeInstances",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "EmbeddedMetrics"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.emf.arn}:*"]
  }
}

resource "aws_iam_role_policy" "collector" {
  name   = "collector"
  role   = aws_iam_role.collector.id
  policy = data.aws_iam_policy_document.collector.json
}

resource "aws_ecs_task_definition" "collector" {
  family                   = "${var.name}-otel-collector"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "512"
  memory                   = "1024"
  execution_role_arn       = aws_iam_role.collector_execution.arn
  task_role_arn            = aws_iam_role.collector.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "otel-collector"
    image     = var.collector_image
    essential = true
    command   = ["--config=env:AOT_CONFIG_CONTENT"]
    environment = [
      { name = "AWS_REGION", value = var.region },
      { name = "ECS_CLUSTER", value = var.cluster_name },
      { name = "AMP_REMOTE_WRITE_URL", value = "${aws_prometheus_workspace.this.prometheus_endpoint}api/v1/remote_write" },
      { name = "EMF_LOG_GROUP", value = aws_cloudwatch_log_group.emf.name },
    ]
    secrets = [
      { name = "AOT_CONFIG_CONTENT", valueFrom = aws_ssm_parameter.collector_config.arn },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.collector.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "otel-collector"
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "collector" {
  name            = "${var.name}-otel-collector"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.collector.arn
  desired_count   = 1
  launch_type     = "FARGATE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.collector_sg_id]
    assign_public_ip = false
  }

  tags = var.tags
}
