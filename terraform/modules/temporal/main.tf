# Self-hosted Temporal on ECS Fargate with its own PostgreSQL (the database
# is the rds module, called by the environment): the server (frontend,
# history, matching and worker roles in each task; the tasks find each other
# through the database and talk on the temporal security group), reached by
# Easel at temporal.<namespace>:7233 through Cloud Map; the Web UI behind the
# load balancer, with operators signed in by Cognito; and the one-shot setup
# task (deploy/temporal/setup.sh: schema, namespace, search attributes).
# docs/deploy.md explains why not Temporal Cloud.

locals {
  setup_script = file("${path.module}/../../../deploy/temporal/setup.sh")
  frontend     = "temporal.${aws_service_discovery_private_dns_namespace.this.name}:7233"

  log_config = {
    for c in ["server", "ui", "setup"] : c => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this[c].name
        awslogs-region        = var.region
        awslogs-stream-prefix = c
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(["server", "ui", "setup"])

  name              = "/ecs/${var.name}-temporal/${each.key}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

# --- roles: pull, log, read the database password; no task role (Temporal
# calls no AWS API) ---

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

data "aws_partition" "current" {}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-temporal-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.db_password_secret_arn]
  }

  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "secrets" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.secrets.json
}

# --- service discovery ---

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = "${var.name}.internal"
  description = "Private names of ${var.name}"
  vpc         = var.vpc_id

  tags = var.tags
}

resource "aws_service_discovery_service" "temporal" {
  name = "temporal"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }

  tags = var.tags
}

# --- server ---

resource "aws_ecs_task_definition" "server" {
  family                   = "${var.name}-temporal"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = tostring(var.server_cpu)
  memory                   = tostring(var.server_memory)
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "temporal"
    image     = var.server_image
    essential = true
    portMappings = [
      { containerPort = 7233, protocol = "tcp" },
      { containerPort = 9090, protocol = "tcp" },
    ]
    environment = [
      { name = "DB", value = "postgres12" },
      { name = "DB_PORT", value = tostring(var.db_port) },
      { name = "POSTGRES_SEEDS", value = var.db_host },
      { name = "POSTGRES_USER", value = var.db_user },
      { name = "DBNAME", value = "temporal" },
      { name = "VISIBILITY_DBNAME", value = "temporal_visibility" },
      # Fixed for the life of the cluster: choose generously.
      { name = "NUM_HISTORY_SHARDS", value = tostring(var.num_history_shards) },
      { name = "PROMETHEUS_ENDPOINT", value = "0.0.0.0:9090" },
    ]
    secrets = [
      { name = "POSTGRES_PWD", valueFrom = var.db_password_secret_arn },
    ]
    dockerLabels = {
      PROMETHEUS_PORT = "9090"
      PROMETHEUS_PATH = "/metrics"
      PROMETHEUS_JOB  = "temporal"
    }
    stopTimeout      = 60
    logConfiguration = local.log_config["server"]
  }])

  tags = var.tags
}

resource "aws_ecs_service" "server" {
  name            = "${var.name}-temporal"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.server.arn
  desired_count   = var.server_count
  launch_type     = "FARGATE"

  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.temporal_sg_id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.temporal.arn
  }

  tags = var.tags
}

# --- Web UI (https://<ui_host>, operators of the ops pool only) ---

resource "aws_ecs_task_definition" "ui" {
  family                   = "${var.name}-temporal-ui"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name         = "temporal-ui"
    image        = var.ui_image
    essential    = true
    portMappings = [{ containerPort = 8080, protocol = "tcp" }]
    environment = [
      { name = "TEMPORAL_ADDRESS", value = local.frontend },
      { name = "TEMPORAL_DEFAULT_NAMESPACE", value = var.namespace },
      { name = "TEMPORAL_UI_PORT", value = "8080" },
    ]
    logConfiguration = local.log_config["ui"]
  }])

  tags = var.tags
}

resource "aws_lb_target_group" "ui" {
  name                 = "${var.name}-temporal-ui"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 10

  health_check {
    path    = "/"
    matcher = "200-399"
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "ui" {
  listener_arn = var.alb_listener_arn
  priority     = var.alb_rule_priority

  action {
    type = "authenticate-cognito"

    authenticate_cognito {
      user_pool_arn       = var.ops_user_pool_arn
      user_pool_client_id = var.ops_client_id
      user_pool_domain    = var.ops_domain
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.ui.arn
  }

  condition {
    host_header {
      values = [var.ui_host]
    }
  }

  tags = var.tags
}

resource "aws_ecs_service" "ui" {
  name            = "${var.name}-temporal-ui"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.ui.arn
  desired_count   = 1
  launch_type     = "FARGATE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.temporal_sg_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.ui.arn
    container_name   = "temporal-ui"
    container_port   = 8080
  }

  tags = var.tags

  depends_on = [aws_lb_listener_rule.ui]
}

# --- one-shot setup (run by hand or by the deploy docs; safe to repeat) ---

resource "aws_ecs_task_definition" "setup" {
  family                   = "${var.name}-temporal-setup"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "setup"
    image     = var.admin_tools_image
    essential = true
    # sh -c SCRIPT NAME MODE: the script sees MODE as $1.
    entryPoint = ["sh", "-c", local.setup_script, "setup.sh"]
    command    = ["all"]
    environment = [
      { name = "POSTGRES_SEEDS", value = var.db_host },
      { name = "DB_PORT", value = tostring(var.db_port) },
      { name = "POSTGRES_USER", value = var.db_user },
      { name = "TEMPORAL_ADDRESS", value = local.frontend },
      { name = "TEMPORAL_NAMESPACE", value = var.namespace },
      { name = "TEMPORAL_RETENTION", value = var.retention },
    ]
    secrets = [
      { name = "SQL_PASSWORD", valueFrom = var.db_password_secret_arn },
    ]
    logConfiguration = local.log_config["setup"]
  }])

  tags = var.tags
}
