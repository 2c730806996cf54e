# Roles of Easel's workloads, each allowed only what its code does:
#
#   execution roles (ECS pulls the image, writes logs, reads the task's secrets)
#     api      DATABASE_URL (API login), REDIS_URL, STRIPE_SECRET_KEY,
#              STRIPE_WEBHOOK_SECRET, CLOUDFRONT_PRIVATE_KEY
#     worker   DATABASE_URL (owner), REDIS_URL, STRIPE_SECRET_KEY; the migration
#              and db-bootstrap tasks (owner URL, API password) use it too
#     gpu      REDIS_URL
#   task roles (what the code calls)
#     api      images bucket: HeadBucket (health), GetObject on users/* (S3
#              presigned URLs, the fallback when CloudFront signing is off)
#     worker   images bucket: DeleteObject on users/* (failed jobs' partial images);
#              SES SendEmail from the domain identity (low-balance notices);
#              SetDesiredCapacity, SetInstanceProtection and PutWarmPool
#              on the GPU Auto Scaling groups (autoscaler)
#     gpu      images bucket: PutObject on users/* (renders, thumbnails);
#              models bucket: read; EFS: mount the /models access point
#     migrate  none (it only talks to Postgres)
#   gpu instance role: join the ECS cluster, SSM Session Manager, CloudWatch agent

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name

  execution_secrets = {
    api    = var.api_secret_arns
    worker = var.worker_secret_arns
    gpu    = var.gpu_secret_arns
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

# --- execution roles ---

resource "aws_iam_role" "execution" {
  for_each = local.execution_secrets

  name               = "${var.name}-${each.key}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  for_each = local.execution_secrets

  role       = aws_iam_role.execution[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  for_each = local.execution_secrets

  statement {
    sid       = "ReadTaskSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = each.value
  }

  statement {
    sid       = "DecryptTaskSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  for_each = local.execution_secrets

  name   = "secrets"
  role   = aws_iam_role.execution[each.key].id
  policy = data.aws_iam_policy_document.execution_secrets[each.key].json
}

# --- task roles ---

resource "aws_iam_role" "task" {
  for_each = toset(["api", "worker", "gpu"])

  name               = "${var.name}-${each.key}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "HeadImagesBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.images_bucket_arn]
  }

  statement {
    sid       = "PresignImages"
    actions   = ["s3:GetObject"]
    resources = ["${var.images_bucket_arn}/users/*"]
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "HeadImagesBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.images_bucket_arn]
  }

  statement {
    sid       = "DeletePartialImages"
    actions   = ["s3:DeleteObject"]
    resources = ["${var.images_bucket_arn}/users/*"]
  }

  statement {
    sid       = "SendNotices"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [var.ses_identity_arn]
  }

  # The GPU autoscaler (AUTOSCALE_DRIVER=ec2, autoscale/ec2.go) reads each
  # tier's groups (on-demand and spot), sets their desired capacity, keeps
  # the on-demand group's warm pool, protects rendering hosts from scale-in
  # and reads the spot group's scaling activities for refused launches.
  # The changes are limited to the GPU groups; the Describe calls take no
  # resource-level permissions, so AWS allows them only on "*".
  statement {
    sid = "ScaleGPUTiers"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:SetInstanceProtection",
      "autoscaling:PutWarmPool",
    ]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account}:autoScalingGroup:*:autoScalingGroupName/${var.gpu_asg_name_prefix}*"]
  }

  statement {
    sid = "DescribeGPUTiers"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeWarmPool",
      "autoscaling:DescribeScalingActivities",
    ]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "gpu" {
  statement {
    sid       = "HeadImagesBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.images_bucket_arn]
  }

  statement {
    sid       = "StoreImages"
    actions   = ["s3:PutObject"]
    resources = ["${var.images_bucket_arn}/users/*"]
  }

  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [var.models_bucket_arn]
  }

  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${var.models_bucket_arn}/*"]
  }

  statement {
    sid       = "MountModelCache"
    actions   = ["elasticfilesystem:ClientMount"]
    resources = [var.efs_file_system_arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [var.efs_access_point_arn]
    }
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "easel-api"
  role   = aws_iam_role.task["api"].id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "easel-control-worker"
  role   = aws_iam_role.task["worker"].id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_role_policy" "gpu" {
  name   = "easel-gpu-worker"
  role   = aws_iam_role.task["gpu"].id
  policy = data.aws_iam_policy_document.gpu.json
}

# --- GPU hosts ---

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gpu_instance" {
  name               = "${var.name}-gpu-instance"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "gpu_instance" {
  for_each = toset([
    "service-role/AmazonEC2ContainerServiceforEC2Role",
    "AmazonSSMManagedInstanceCore",
    "CloudWatchAgentServerPolicy",
  ])

  role       = aws_iam_role.gpu_instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_iam_instance_profile" "gpu" {
  name = "${var.name}-gpu-instance"
  role = aws_iam_role.gpu_instance.name

  tags = var.tags
}
