#!/usr/bin/env bash
# After a deploy: the public API answers, through CloudFront, with the
# version that was just deployed, and a database-backed route works.
#
#   health-check.sh PUBLIC_URL VERSION
#
# Retries for up to five minutes (tasks of the old revision drain while the
# new ones take over).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 PUBLIC_URL VERSION" >&2; exit 2; }
url=${1%/} want=$2

for attempt in $(seq 1 30); do
  got=$(curl -fsS --max-time 10 "$url/api/v1/app/version" | jq -r .version || true)
  if [ "$got" = "$want" ] && curl -fsS --max-time 10 -o /dev/null "$url/v1/plans"; then
    echo "health-check: $url runs $want"
    exit 0
  fi
  echo "health-check: attempt $attempt: version '${got}', want '$want'" >&2
  sleep 10
done
echo "health-check: $url did not come up on $want" >&2
exit 1
