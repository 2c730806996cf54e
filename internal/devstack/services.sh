#!/usr/bin/env bash
# Makes sure the local Postgres and Redis that Easel's development stack and
# tests use are running on 127.0.0.1, starting or installing them (Debian)
# where they are missing. Safe to run repeatedly.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $name did not come up" >&2; return 1
}

postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

ensure_postgres() {
  postgres_up && return 0
  local fresh=0
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "services: installing PostgreSQL"
    apt_install postgresql
    fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for postgres postgres_up
  if [ "$fresh" = 1 ]; then
    # A fresh cluster authenticates TCP clients by password: give the
    # postgres role the development password the default URLs carry.
    as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  redis_up && return 0
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: installing Redis"
    apt_install redis-server
  fi
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/easel.log
  wait_for redis redis_up
}

command -v pg_isready >/dev/null 2>&1 || apt_install postgresql-client
command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
# The web app's build (Vite 7) and browser tests (Playwright) need Node
# 20.19 or newer; Debian bookworm's own nodejs (18) is too old.
check_node() {
  if ! command -v node >/dev/null 2>&1; then
    echo "services: Node.js is missing: install Node 20.19+ or 22.12+ (e.g. from nodejs.org or NodeSource) to build the web app" >&2
    return 1
  fi
  local v major minor
  v=$(node --version); v=${v#v}; major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  if [ "$major" -lt 20 ] || { [ "$major" = 20 ] && [ "$minor" -lt 19 ]; } || { [ "$major" = 21 ]; } || { [ "$major" = 22 ] && [ "$minor" -lt 12 ]; }; then
    echo "services: Node $v is too old for the web app (Vite 7 needs ^20.19 or >=22.12); Debian's nodejs 18 will not do" >&2
    return 1
  fi
}

# The browser tests drive Debian's chromium (Playwright downloads none).
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  echo "services: installing chromium for the web app's browser tests"
  apt_install chromium
}

ensure_postgres
ensure_redis
check_node
ensure_chromium
echo "services: postgres, redis, node $(node --version) and $(chromium --version 2>/dev/null | head -n 1) are ready"
