#!/usr/bin/env bash
# Rolls Easel images out to one ECS environment (the deploy workflow runs it;
# an operator can too, with the AWS CLI, jq and credentials for the account).
#
#   ecs-deploy.sh migrate  NAME API_IMAGE            run `easel migrate up` once and wait for it
#   ecs-deploy.sh deploy   NAME API_IMAGE GPU_IMAGE STATE_FILE
#                                                    new task definition revisions with the images,
#                                                    every service updated, wait until stable;
#                                                    STATE_FILE records what ran before
#   ecs-deploy.sh rollback NAME STATE_FILE           put every service back on the revision in
#                                                    STATE_FILE and wait until stable
#
# NAME is the stack name (terraform's name, e.g. easel-prod): cluster NAME,
# services NAME-api, NAME-control-worker, NAME-gpu-<tier>, task families of
# the same names plus NAME-migrate. A new revision copies the family's latest
# revision (what Terraform registered: environment, secrets, roles) and swaps
# only the easel images, so infrastructure changes and image rollouts do not
# fight. Migrations are forward-only: a rollback keeps the schema, so every
# migration must work with the previous release (expand, then contract).
set -euo pipefail

die() { echo "ecs-deploy: $*" >&2; exit 1; }
for tool in aws jq; do command -v "$tool" >/dev/null || die "$tool is required"; done

services() { # the stack's services that exist (GPU tiers may be disabled)
  local name=$1 all=("$name-control-worker" "$name-gpu-t4" "$name-gpu-a10g" "$name-gpu-a100" "$name-api")
  aws ecs describe-services --cluster "$name" --services "${all[@]}" \
    --query 'services[?status==`ACTIVE`].serviceName' --output text | tr '\t' '\n' |
    awk -v order="${all[*]}" 'BEGIN { n = split(order, o, " "); for (i = 1; i <= n; i++) rank[o[i]] = i }
                              NF { print rank[$0], $0 }' | sort -n | cut -d' ' -f2
}

# register FAMILY API_IMAGE GPU_IMAGE: a new revision of FAMILY's latest with
# the easel containers' images replaced (the API image runs easel-api,
# easel-control-worker and easel-migrate, the GPU image easel-gpu-worker;
# sidecars such as InvokeAI keep theirs); prints its ARN.
register() {
  local family=$1 api_image=$2 gpu_image=$3
  aws ecs describe-task-definition --task-definition "$family" --query taskDefinition --output json |
    jq --arg api "$api_image" --arg gpu "$gpu_image" '
      del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
          .registeredAt, .registeredBy, .deregisteredAt)
      | .containerDefinitions |= map(
          if (.name | IN("easel-api", "easel-control-worker", "easel-migrate")) then .image = $api
          elif .name == "easel-gpu-worker" and $gpu != "" then .image = $gpu
          else . end)' > /tmp/ecs-deploy-taskdef.json
  aws ecs register-task-definition --cli-input-json file:///tmp/ecs-deploy-taskdef.json \
    --query taskDefinition.taskDefinitionArn --output text
}

# wait_stable NAME SERVICE...: up to 30 minutes (a GPU task waits for InvokeAI
# to load models; one waiter call gives up after 10).
wait_stable() {
  local name=$1 i
  shift
  for i in 1 2 3; do
    aws ecs wait services-stable --cluster "$name" --services "$@" && return 0
    echo "ecs-deploy: not stable yet ($i/3)" >&2
  done
  return 1
}

migrate() {
  local name=$1 api_image=$2 arn net task code
  arn=$(register "$name-migrate" "$api_image" "")
  # The migration runs where the control worker runs: its subnets and
  # security group reach the database.
  net=$(aws ecs describe-services --cluster "$name" --services "$name-control-worker" \
    --query 'services[0].networkConfiguration' --output json)
  task=$(aws ecs run-task --cluster "$name" --launch-type FARGATE --task-definition "$arn" \
    --network-configuration "$net" --started-by "ecs-deploy" --query 'tasks[0].taskArn' --output text)
  [ -n "$task" ] && [ "$task" != "None" ] || die "migration task did not start"
  echo "ecs-deploy: migrating with $task"
  aws ecs wait tasks-stopped --cluster "$name" --tasks "$task"
  code=$(aws ecs describe-tasks --cluster "$name" --tasks "$task" \
    --query 'tasks[0].containers[?name==`easel-migrate`].exitCode | [0]' --output text)
  [ "$code" = "0" ] || die "migration exited with $code (logs: /ecs/$name/migrate)"
  echo "ecs-deploy: migrations applied"
}

deploy() {
  local name=$1 api_image=$2 gpu_image=$3 state=$4 svc current arn running i
  local -a updated=() wanted=()
  : > "$state"
  for svc in $(services "$name"); do
    current=$(aws ecs describe-services --cluster "$name" --services "$svc" \
      --query 'services[0].taskDefinition' --output text)
    echo "$svc $current" >> "$state"
    arn=$(register "$svc" "$api_image" "$gpu_image")
    echo "ecs-deploy: $svc $current -> $arn"
    aws ecs update-service --cluster "$name" --service "$svc" --task-definition "$arn" >/dev/null
    updated+=("$svc")
    wanted+=("$arn")
  done
  [ "${#updated[@]}" -gt 0 ] || die "no services found in cluster $name"
  echo "ecs-deploy: waiting for ${updated[*]} to become stable"
  wait_stable "$name" "${updated[@]}" || die "services did not become stable"
  # A deployment the circuit breaker rolled back is stable too, on the old
  # revision: make sure every service runs what was asked.
  for i in "${!updated[@]}"; do
    running=$(aws ecs describe-services --cluster "$name" --services "${updated[$i]}" \
      --query 'services[0].taskDefinition' --output text)
    [ "$running" = "${wanted[$i]}" ] || die "${updated[$i]} runs $running, not ${wanted[$i]} (circuit breaker rollback?)"
  done
  echo "ecs-deploy: deployed"
}

rollback() {
  local name=$1 state=$2 svc previous
  local -a updated=()
  [ -s "$state" ] || die "nothing to roll back: $state is empty"
  while read -r svc previous; do
    echo "ecs-deploy: rolling $svc back to $previous"
    aws ecs update-service --cluster "$name" --service "$svc" --task-definition "$previous" >/dev/null
    updated+=("$svc")
  done < "$state"
  wait_stable "$name" "${updated[@]}" || die "services did not become stable after the rollback"
  echo "ecs-deploy: rolled back"
}

case "${1:-}" in
  migrate) [ $# -eq 3 ] || die "usage: $0 migrate NAME API_IMAGE"; migrate "$2" "$3" ;;
  deploy) [ $# -eq 5 ] || die "usage: $0 deploy NAME API_IMAGE GPU_IMAGE STATE_FILE"; deploy "$2" "$3" "$4" "$5" ;;
  rollback) [ $# -eq 3 ] || die "usage: $0 rollback NAME STATE_FILE"; rollback "$2" "$3" ;;
  *) die "usage: $0 migrate|deploy|rollback ..." ;;
esac
