#!/usr/bin/env bash
# Publishes the web app's build (web/dist/app, `npm run build`) to the
# frontend bucket behind CloudFront (the deploy workflow runs it; an operator
# can too, with the AWS CLI and credentials for the account).
#
#   publish-web.sh BUILD_DIR BUCKET DISTRIBUTION_ID
#
# 1. static/ (content-hashed names) first, Cache-Control immutable for a
#    year, so index.html never names a file not yet uploaded. Nothing under
#    static/ is deleted: a tab still running the previous index.html loads
#    its files by their old names.
# 2. Everything else (index.html, favicon.svg, ...) with Cache-Control
#    no-cache, deleting what the build no longer has.
# 3. A CloudFront invalidation of those non-hashed paths, whose names stay
#    while their content changes (app routes are served as /index.html).
set -euo pipefail

die() { echo "publish-web: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: publish-web.sh BUILD_DIR BUCKET DISTRIBUTION_ID"
dir=${1%/} bucket=$2 distribution=$3
[ -f "$dir/index.html" ] || die "$dir has no index.html: run npm run build in web/ first"
command -v aws >/dev/null || die "aws is required"

if [ -d "$dir/static" ]; then
  aws s3 sync "$dir/static" "s3://$bucket/static/" --cache-control 'public,max-age=31536000,immutable'
fi
aws s3 sync "$dir" "s3://$bucket/" --delete --exclude 'static/*' --cache-control 'no-cache'

paths=()
while IFS= read -r -d '' file; do
  paths+=("/${file#./}")
done < <(cd "$dir" && find . -type f -not -path './static/*' -print0)
aws cloudfront create-invalidation --distribution-id "$distribution" --paths "${paths[@]}" >/dev/null
echo "publish-web: $dir -> s3://$bucket, invalidated ${paths[*]} on $distribution"
