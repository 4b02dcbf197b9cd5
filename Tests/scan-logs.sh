#!/usr/bin/env bash
# Fails when any log line the suite kept (TOLLGATE_TEST_LOG_DIR: every real executable's
# output, and a verbose replay of every fixture) holds a whole Tollgate API key, a Stripe
# secret or restricted key, or a webhook signing secret. Matches are shown redacted.
#   Tests/scan-logs.sh FOLDER
set -euo pipefail
folder="$1"
files=$(find "$folder" -type f -name '*.log' | wc -l)
lines=$(find "$folder" -type f -name '*.log' -exec cat {} + | wc -l)
shapes='(^|[^A-Za-z0-9_])(tg_(live|test)_[A-Za-z0-9]{32}|[sr]k_(live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/=]{8,})'
if found=$(grep -rEn --include='*.log' "$shapes" "$folder"); then
    echo "log scan: a key or secret reached a log line:" >&2
    echo "$found" | sed -E 's/(tg_(live|test)_[A-Za-z0-9]{4})[A-Za-z0-9]+/\1[…]/g; s/([sr]k_(live|test)_|whsec_)[A-Za-z0-9+\/=]+/\1[…]/g' | head -20 >&2
    exit 1
fi
echo "log scan: $files files, $lines lines, no API key or secret" >&2
