# The ECS cluster and Easel's Fargate services (seed section 3): the API
# behind the load balancer (2 vCPU / 4 GB, two zones, scaled on CPU), the
# control-plane worker (workflows, ledger, billing), the one-shot migration
# and the one-shot database bootstrap. Task definitions are the JSON
# templates in deploy/ecs; the deploy workflow rolls new images out by
# copying the latest revision with new images (deploy/scripts/ecs-deploy.sh),
# so the services ignore task_definition changes made outside Terraform.
#
# The control worker also runs the GPU autoscaler (AUTOSCALE_DRIVER=ec2): it
# sizes the Auto Scaling group of each tier named in AUTOSCALE_GROUPS
# ("t4=<asg>,a10g=<asg>,a100=<asg>", from var.gpu_asg_names), the spot
# groups of AUTOSCALE_SPOT_GROUPS and the warm pools of AUTOSCALE_WARM_POOL,
# with the policy var.autoscaler sets (every AUTOSCALE_* knob).
#
# The API hands out CloudFront signed URLs for images
# (https://<cloudfront_domain>/images/<key>): CLOUDFRONT_DOMAIN and
# CLOUDFRONT_KEY_ID are plain environment, the private key
# (CLOUDFRONT_PRIVATE_KEY) comes from Secrets Manager.

locals {
  templates = "${path.module}/../../../deploy/ecs"

  common = {
    region             = var.region
    easel_image        = var.easel_image
    temporal_address   = var.temporal_address
    temporal_namespace = var.temporal_namespace
    s3_bucket          = var.images_bucket
    log_level          = var.log_level
  }

  # AUTOSCALE_GROUPS, AUTOSCALE_SPOT_GROUPS, AUTOSCALE_WARM_POOL and
  # AUTOSCALE_TIER_MIN: tier=value, comma separated.
  autoscale_groups      = join(",", [for tier, asg in var.gpu_asg_names : "${tier}=${asg}"])
  autoscale_spot_groups = join(",", [for tier, asg in var.gpu_spot_asg_names : "${tier}=${asg}"])
  autoscale_warm_pool   = join(",", [for tier, n in var.gpu_warm_pools : "${tier}=${n}"])
  autoscale_tier_min    = join(",", [for tier, n in var.autoscaler.tier_min : "${tier}=${n}"])

  api = jsondecode(templatefile("${local.templates}/api.json", merge(local.common, {
    name                       = "${var.name}-api"
    cpu                        = var.api_cpu
    memory                     = var.api_memory
    execution_role_arn         = var.execution_role_arns["api"]
    task_role_arn              = var.task_role_arns["api"]
    log_group                  = aws_cloudwatch_log_group.this["api"].name
    oidc_issuer                = var.oidc_issuer
    oidc_audience              = var.oidc_audience
    oidc_hosted_ui_url         = var.oidc_hosted_ui_url
    cloudfront_domain          = var.cloudfront_domain
    cloudfront_key_id          = var.cloudfront_key_id
    database_url_secret_arn    = var.secret_arns.database_url_api
    redis_url_secret_arn       = var.secret_arns.redis_url
    stripe_secret_key_arn      = var.secret_arns.stripe_secret_key
    stripe_webhook_secret_arn  = var.secret_arns.stripe_webhook_secret
    cloudfront_private_key_arn = var.secret_arns.cloudfront_signing_key
  })))

  control_worker = jsondecode(templatefile("${local.templates}/control-worker.json", merge(local.common, {
    name                      = "${var.name}-control-worker"
    cpu                       = var.worker_cpu
    memory                    = var.worker_memory
    execution_role_arn        = var.execution_role_arns["worker"]
    task_role_arn             = var.task_role_arns["worker"]
    log_group                 = aws_cloudwatch_log_group.this["control-worker"].name
    notify_from               = var.notify_from
    database_url_secret_arn   = var.secret_arns.database_url
    redis_url_secret_arn      = var.secret_arns.redis_url
    stripe_secret_key_arn     = var.secret_arns.stripe_secret_key
    autoscale_groups          = local.autoscale_groups
    autoscale_spot_groups     = local.autoscale_spot_groups
    autoscale_warm_pool       = local.autoscale_warm_pool
    autoscale_tier_min        = local.autoscale_tier_min
    autoscale_policy          = var.autoscaler.policy
    autoscale_min             = var.autoscaler.min
    autoscale_max             = var.autoscaler.max
    autoscale_up_rules        = var.autoscaler.up_rules
    autoscale_in_below        = var.autoscaler.in_below
    autoscale_in_for          = var.autoscaler.in_for
    autoscale_timezone        = var.autoscaler.timezone
    autoscale_windows         = var.autoscaler.windows
    autoscale_poll_interval   = var.autoscaler.poll_interval
    autoscale_up_age          = var.autoscaler.up_age
    autoscale_up_wait         = var.autoscaler.up_wait
    autoscale_free_up_age     = var.autoscaler.free_up_age
    autoscale_drain           = var.autoscaler.drain
    autoscale_idle_for        = var.autoscaler.idle_for
    autoscale_billing_period  = var.autoscaler.billing_period
    autoscale_billing_margin  = var.autoscaler.billing_margin
    autoscale_billing_minimum = var.autoscaler.billing_minimum
    autoscale_floor           = var.autoscaler.floor
    autoscale_floor_lead      = var.autoscaler.floor_lead
    autoscale_host_activity   = var.autoscaler.host_activity
  })))

  migrate = jsondecode(templatefile("${local.templates}/migrate.json", {
    name                    = "${var.name}-migrate"
    region                  = var.region
    easel_image             = var.easel_image
    execution_role_arn      = var.execution_role_arns["worker"]
    log_group               = aws_cloudwatch_log_group.this["migrate"].name
    database_url_secret_arn = var.secret_arns.database_url
  }))

  task_definitions = {
    api            = local.api
    control-worker = local.control_worker
    migrate        = local.migrate
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(["api", "control-worker", "migrate", "db-bootstrap"])

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.task_definitions

  family                   = each.value.family
  network_mode             = each.value.networkMode
  requires_compatibilities = each.value.requiresCompatibilities
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = each.value.executionRoleArn
  task_role_arn            = lookup(each.value, "taskRoleArn", null)
  container_definitions    = jsonencode(each.value.containerDefinitions)

  runtime_platform {
    operating_system_family = each.value.runtimePlatform.operatingSystemFamily
    cpu_architecture        = each.value.runtimePlatform.cpuArchitecture
  }

  tags = var.tags
}

# --- load balancer ---

resource "aws_lb" "this" {
  name               = var.name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [var.alb_sg_id]
  subnets            = var.public_subnet_ids

  drop_invalid_header_fields = true
  # Server-Sent Event streams (/v1/generations/{id}/events) stay open.
  idle_timeout               = 120
  enable_deletion_protection = true

  tags = var.tags
}

resource "aws_lb_target_group" "api" {
  name                 = "${var.name}-api"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    # Readiness: 200 only once the API has its database, Temporal and the
    # OIDC key set, so no request reaches a task that cannot verify tokens.
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  # Only CloudFront (which adds the origin header, after WAF) reaches the API.
  default_action {
    type = "fixed-response"

    fixed_response {
      content_type = "text/plain"
      message_body = "Forbidden"
      status_code  = "403"
    }
  }

  tags = var.tags
}

resource "aws_lb_listener_rule" "api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }

  condition {
    host_header {
      values = [var.api_origin_domain]
    }
  }

  condition {
    http_header {
      http_header_name = var.origin_verify_header
      values           = [var.origin_verify_secret]
    }
  }

  tags = var.tags
}

# --- services ---

resource "aws_ecs_service" "api" {
  name            = "${var.name}-api"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this["api"].arn
  desired_count   = var.api_min_count
  launch_type     = "FARGATE"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.api_sg_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "easel-api"
    container_port   = 8080
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener_rule.api]
}

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.api_min_count
  max_capacity       = var.api_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_ecs_service" "control_worker" {
  name            = "${var.name}-control-worker"
  cluster         = aws_ecs_cluster.this.arn
  task_definition = aws_ecs_task_definition.this["control-worker"].arn
  desired_count   = var.worker_count
  launch_type     = "FARGATE"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.worker_sg_id]
    assign_public_ip = false
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [task_definition]
  }
}

# --- one-shot: database bootstrap ---
#
# After the first `easel migrate up` (which creates the easel_api role), this
# creates the API's login and makes it a member of easel_api, so the API
# works under row-level security without owning the tables. Safe to repeat
# (it also resets the login's password to the one in Secrets Manager).
resource "aws_ecs_task_definition" "db_bootstrap" {
  family                   = "${var.name}-db-bootstrap"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = var.execution_role_arns["worker"]

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "psql"
    image     = var.psql_image
    essential = true
    command = ["sh", "-c", <<-EOT
      psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -v login="$API_LOGIN" -v password="$API_PASSWORD" <<'SQL'
      SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'login', :'password')
        WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'login') \gexec
      SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'login', :'password') \gexec
      SELECT format('GRANT easel_api TO %I', :'login') \gexec
      SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'login') \gexec
      SQL
    EOT
    ]
    environment = [{ name = "API_LOGIN", value = var.api_db_login }]
    secrets = [
      { name = "DATABASE_URL", valueFrom = var.secret_arns.database_url },
      { name = "API_PASSWORD", valueFrom = var.secret_arns.database_api_password },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this["db-bootstrap"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "db-bootstrap"
      }
    }
  }])

  tags = var.tags
}
