# One GPU tier (design document section 4): Auto Scaling groups of ECS GPU
# hosts on the ECS GPU-optimized AMI, and a daemon service that runs the
# tier's GPU task (the easel GPU worker with one InvokeAI server per GPU)
# on every host. The task's worker reserves every GPU of the host and
# InvokeAI server i names GPU i (docs/deploy.md "GPU hosts"), so every
# instance type of the tier must have the tier's GPU count
# (deploy/terraform_test.go checks).
#
# Two groups, because EC2 allows a warm pool only on a group that neither
# has a mixed instances policy nor requests spot instances:
#
# - this: on-demand, the tier's first instance type, with a warm pool of
#   stopped instances (image and models on disk) that the autoscaler keeps
#   (PutWarmPool, AUTOSCALE_WARM_POOL), so a scale-up takes work in well
#   under a minute. Instances return to the pool on scale-in.
# - spot (with var.spot): spot only, every instance type of the tier,
#   price-capacity-optimized, no warm pool. The autoscaler's work policy
#   runs its floor from last week here (AUTOSCALE_SPOT_GROUPS) and covers
#   from the on-demand group while EC2 refuses spot capacity
#   (docs/autoscaling.md).
#
# Capacity is the autoscaler's: the Autoscaler workflow of the tier, run by
# the control worker (AUTOSCALE_DRIVER=ec2, AUTOSCALE_GROUPS from asg_name),
# sets both groups' desired capacity between AUTOSCALE_MIN and
# AUTOSCALE_MAX, which must lie within min_size and max_size, so Terraform
# ignores desired_capacity after creation, and the warm pool, which the
# autoscaler owns. It also protects rendering hosts from scale-in. The
# queue_surge policy is the design document's "GPU Queue Depth > 100 ->
# auto scale" alarm action (terraform/modules/monitoring).

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  description            = "ECS GPU host, tier ${var.tier}"
  image_id               = data.aws_ssm_parameter.ami.insecure_value
  instance_type          = var.instance_types[0] # the on-demand group's; the spot group overrides it
  update_default_version = true
  vpc_security_group_ids = [var.gpu_sg_id]

  user_data = base64encode(templatefile("${path.module}/user_data.sh.tftpl", {
    cluster_name = var.cluster_name
    tier         = var.tier
  }))

  iam_instance_profile {
    arn = var.instance_profile_arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = var.name, "easel:gpu-tier" = var.tier })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = var.name, "easel:gpu-tier" = var.tier })
  }

  tags = var.tags
}

locals {
  # A new launch template version (AMI, user data) updates the groups and
  # rolls the hosts (instance_refresh).
  launch_template_version = aws_launch_template.this.latest_version
  group_tags              = merge(var.tags, { Name = var.name, "easel:gpu-tier" = var.tier })
  enabled_metrics = [
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
  ]
}

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.min_size
  vpc_zone_identifier       = var.subnet_ids
  health_check_type         = "EC2"
  health_check_grace_period = 300
  default_cooldown          = 300
  enabled_metrics           = local.enabled_metrics

  launch_template {
    id      = aws_launch_template.this.id
    version = local.launch_template_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = local.group_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }

  lifecycle {
    # The autoscaler sets the desired capacity and keeps the warm pool.
    ignore_changes = [desired_capacity, warm_pool]
  }
}

resource "aws_autoscaling_group" "spot" {
  count = var.spot ? 1 : 0

  name                      = "${var.name}-spot"
  min_size                  = 0
  max_size                  = var.max_size
  desired_capacity          = 0
  vpc_zone_identifier       = var.subnet_ids
  capacity_rebalance        = true
  health_check_type         = "EC2"
  health_check_grace_period = 300
  default_cooldown          = 300
  enabled_metrics           = local.enabled_metrics

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.this.id
        version            = local.launch_template_version
      }

      dynamic "override" {
        for_each = var.instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
    }
  }

  dynamic "tag" {
    for_each = merge(local.group_tags, { Name = "${var.name}-spot" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_autoscaling_policy" "queue_surge" {
  name                   = "${var.name}-queue-surge"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = 3
  cooldown               = 180
}

# --- the tier's GPU task, one per host ---

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

locals {
  task = jsondecode(templatefile("${path.module}/../../../deploy/ecs/gpu-worker-${var.tier}.json", {
    name                 = var.name
    region               = var.region
    gpu_image            = var.gpu_image
    invokeai_image       = var.invokeai_image
    engine               = var.engine
    execution_role_arn   = var.execution_role_arn
    task_role_arn        = var.task_role_arn
    log_group            = aws_cloudwatch_log_group.this.name
    temporal_address     = var.temporal_address
    temporal_namespace   = var.temporal_namespace
    s3_bucket            = var.images_bucket
    log_level            = var.log_level
    redis_url_secret_arn = var.redis_url_secret_arn
    efs_file_system_id   = var.efs_file_system_id
    efs_access_point_id  = var.efs_access_point_id
  }))
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.task.family
  network_mode             = local.task.networkMode
  pid_mode                 = local.task.pidMode
  requires_compatibilities = local.task.requiresCompatibilities
  execution_role_arn       = local.task.executionRoleArn
  task_role_arn            = local.task.taskRoleArn
  container_definitions    = jsonencode(local.task.containerDefinitions)

  placement_constraints {
    type       = local.task.placementConstraints[0].type
    expression = local.task.placementConstraints[0].expression
  }

  # The model cache (EFS), and the host's /etc/easel, where the user data
  # wrote the instance id the worker names in its Temporal identity
  # (GPU_INSTANCE_ID_FILE; the task itself has no instance metadata).
  dynamic "volume" {
    for_each = local.task.volumes

    content {
      name      = volume.value.name
      host_path = try(volume.value.host.sourcePath, null)

      dynamic "efs_volume_configuration" {
        for_each = can(volume.value.efsVolumeConfiguration) ? [volume.value.efsVolumeConfiguration] : []

        content {
          file_system_id     = efs_volume_configuration.value.fileSystemId
          transit_encryption = efs_volume_configuration.value.transitEncryption

          authorization_config {
            access_point_id = efs_volume_configuration.value.authorizationConfig.accessPointId
            iam             = efs_volume_configuration.value.authorizationConfig.iam
          }
        }
      }
    }
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                = var.name
  cluster             = var.cluster_arn
  task_definition     = aws_ecs_task_definition.this.arn
  launch_type         = "EC2"
  scheduling_strategy = "DAEMON"

  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets         = var.subnet_ids
    security_groups = [var.gpu_sg_id]
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [task_definition]
  }
}
