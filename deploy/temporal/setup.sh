#!/bin/sh
# Prepares a self-hosted Temporal for Easel; runs in the temporalio/admin-tools
# image (temporal-sql-tool and the temporal CLI), in Compose and as the ECS
# task <name>-temporal-setup. Every step is safe to repeat.
#
#   setup.sh schema      create the two databases and apply every schema migration
#   setup.sh namespace   wait for the frontend, then create the namespace and
#                        Easel's search attributes
#   setup.sh all         both, in that order (the server crash-loops until the
#                        schema exists, then comes up on its own)
#
# Environment: POSTGRES_SEEDS (host), DB_PORT (5432), POSTGRES_USER,
# SQL_PASSWORD, TEMPORAL_ADDRESS (host:7233), TEMPORAL_NAMESPACE,
# TEMPORAL_RETENTION (e.g. 720h).
set -eu

: "${DB_PORT:=5432}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_RETENTION:=720h}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --endpoint "$POSTGRES_SEEDS" --port "$DB_PORT" \
    --user "$POSTGRES_USER" --password "$SQL_PASSWORD" "$@"
}

schema() {
  echo "setup: waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT"
  i=0
  until nc -z "$POSTGRES_SEEDS" "$DB_PORT"; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || { echo "setup: PostgreSQL did not come up" >&2; exit 1; }
    sleep 1
  done
  for db in temporal temporal_visibility; do
    # create-database fails when the database exists; that is the only
    # failure it has on a reachable server.
    sql_tool --database "$db" create-database || echo "setup: database $db exists"
  done
  # setup-schema -v 0.0 stamps an empty database and leaves a stamped one
  # alone; update-schema applies only the versions the database lacks.
  sql_tool --database temporal setup-schema -v 0.0
  sql_tool --database temporal update-schema -d "$SCHEMA_DIR/temporal/versioned"
  sql_tool --database temporal_visibility setup-schema -v 0.0
  sql_tool --database temporal_visibility update-schema -d "$SCHEMA_DIR/visibility/versioned"
  echo "setup: schema up to date"
}

namespace() {
  echo "setup: waiting for the Temporal frontend at $TEMPORAL_ADDRESS"
  i=0
  until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 300 ] || { echo "setup: Temporal did not come up" >&2; exit 1; }
    sleep 2
  done
  if ! temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
      --retention "$TEMPORAL_RETENTION"
  fi
  # The search attributes the API sets on every generation
  # (api.SearchAttributes): runs are found by user, tier and plan in the UI.
  existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE")
  for attr in UserId GpuTier Plan; do
    if ! printf '%s\n' "$existing" | grep -qw "$attr"; then
      temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" \
        --name "$attr" --type Keyword
    fi
  done
  echo "setup: namespace $TEMPORAL_NAMESPACE ready"
}

case "${1:-all}" in
  schema) schema ;;
  namespace) namespace ;;
  all) schema && namespace ;;
  *) echo "usage: setup.sh schema|namespace|all" >&2; exit 2 ;;
esac
