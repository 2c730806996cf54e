# The shared model cache of the deployment guide (EFS mounted at /models on the GPU
# workers and their InvokeAI sidecars): one file system, a mount target in
# each private subnet, an access point rooted at /models. Elastic throughput
# follows model loads without provisioning.

resource "aws_efs_file_system" "this" {
  creation_token   = var.name
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  lifecycle_policy {
    transition_to_primary_storage_class = "AFTER_1_ACCESS"
  }

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_efs_mount_target" "this" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = var.security_group_ids
}

resource "aws_efs_access_point" "models" {
  file_system_id = aws_efs_file_system.this.id

  posix_user {
    uid = var.uid
    gid = var.gid
  }

  root_directory {
    path = "/models"

    creation_info {
      owner_uid   = var.uid
      owner_gid   = var.gid
      permissions = "0755"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-models" })
}
