# The deployment guide's security groups (section 2.2), one per role, plus the roles the
# seed does not have: the control-plane worker (and the one-shot migration),
# the self-hosted Temporal service and its database, and the metrics
# collector. Rules reference groups, never addresses, except the load
# balancer's public listeners.
#
#   group        inbound                                   seed row
#   alb          80, 443 from anywhere                     sg-alb
#   api          8080 from alb (and the collector)         sg-api
#   gpu          9100 from the collector (metrics) only    sg-gpu ("-")
#   rds          5432 from api, gpu, worker                sg-rds
#   redis        6379 from api, gpu, worker                sg-redis
#   efs          2049 from gpu                             sg-efs
#   worker       9090 from the collector                   -
#   temporal     7233 from api, worker, gpu; 8080 (UI) from alb;
#                9090 from the collector; all from itself (cluster membership)
#   temporal_db  5432 from temporal                        -
#   collector    none                                      -
#
# The GPU workers never open Postgres (they report through Temporal); the
# rds rule for gpu is the deployment guide's and can be dropped.

locals {
  groups = {
    alb         = "Application load balancer (public HTTPS)"
    api         = "API tasks"
    worker      = "Control-plane worker and migration tasks"
    gpu         = "GPU hosts and GPU worker tasks"
    rds         = "PostgreSQL (Easel)"
    redis       = "Redis"
    efs         = "EFS model cache"
    temporal    = "Temporal server and Web UI"
    temporal_db = "PostgreSQL (Temporal)"
    collector   = "Metrics collector"
  }

  # Groups with unrestricted egress; the data stores have none (the deployment guide's "-").
  egress = ["alb", "api", "worker", "gpu", "temporal", "collector"]

  ingress = {
    alb_http          = { group = "alb", from = 80, to = 80, source = null, cidr = "0.0.0.0/0" }
    alb_https         = { group = "alb", from = 443, to = 443, source = null, cidr = "0.0.0.0/0" }
    api_from_alb      = { group = "api", from = 8080, to = 8080, source = "alb", cidr = null }
    api_metrics       = { group = "api", from = 8080, to = 8080, source = "collector", cidr = null }
    worker_metrics    = { group = "worker", from = 9090, to = 9090, source = "collector", cidr = null }
    gpu_metrics       = { group = "gpu", from = 9100, to = 9100, source = "collector", cidr = null }
    rds_from_api      = { group = "rds", from = 5432, to = 5432, source = "api", cidr = null }
    rds_from_gpu      = { group = "rds", from = 5432, to = 5432, source = "gpu", cidr = null }
    rds_from_worker   = { group = "rds", from = 5432, to = 5432, source = "worker", cidr = null }
    redis_from_api    = { group = "redis", from = 6379, to = 6379, source = "api", cidr = null }
    redis_from_gpu    = { group = "redis", from = 6379, to = 6379, source = "gpu", cidr = null }
    redis_from_worker = { group = "redis", from = 6379, to = 6379, source = "worker", cidr = null }
    efs_from_gpu      = { group = "efs", from = 2049, to = 2049, source = "gpu", cidr = null }
    temporal_api      = { group = "temporal", from = 7233, to = 7233, source = "api", cidr = null }
    temporal_worker   = { group = "temporal", from = 7233, to = 7233, source = "worker", cidr = null }
    temporal_gpu      = { group = "temporal", from = 7233, to = 7233, source = "gpu", cidr = null }
    temporal_ui       = { group = "temporal", from = 8080, to = 8080, source = "alb", cidr = null }
    temporal_metrics  = { group = "temporal", from = 9090, to = 9090, source = "collector", cidr = null }
    temporal_cluster  = { group = "temporal", from = 0, to = 65535, source = "temporal", cidr = null }
    temporal_db       = { group = "temporal_db", from = 5432, to = 5432, source = "temporal", cidr = null }
  }
}

resource "aws_security_group" "this" {
  for_each = local.groups

  name        = "${var.name}-${replace(each.key, "_", "-")}"
  description = each.value
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-${replace(each.key, "_", "-")}" })
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.ingress

  security_group_id            = aws_security_group.this[each.value.group].id
  description                  = each.key
  ip_protocol                  = "tcp"
  from_port                    = each.value.from
  to_port                      = each.value.to
  referenced_security_group_id = each.value.source == null ? null : aws_security_group.this[each.value.source].id
  cidr_ipv4                    = each.value.cidr

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  for_each = toset(local.egress)

  security_group_id = aws_security_group.this[each.key].id
  description       = "all outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = var.tags
}
