#!/usr/bin/env bash
# Fails when any line the suite kept (TOLLGATE_TEST_LOG_DIR: every real executable's and
# `tollgate serve`'s output, whichever test started it) holds a whole Tollgate API key, a
# Stripe secret or restricted key, a webhook signing secret, a JWT or a Google access
# token: the patterns of SecretsInLogsTests, which searches the fixtures' lines in process.
# Matches are shown redacted.
#   Tests/scan-logs.sh FOLDER
set -euo pipefail
folder="$1"
files=$(find "$folder" -type f -name '*.log' | wc -l)
lines=$(find "$folder" -type f -name '*.log' -exec cat {} + | wc -l)
shapes='(^|[^A-Za-z0-9_])(tg_(live|test)_[A-Za-z0-9]{32}|[sr]k_(live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/=]{8,}|eyJ[A-Za-z0-9_-]{10,}\.eyJ|ya29\.[A-Za-z0-9_-]{8,})'
if found=$(grep -rEn --include='*.log' "$shapes" "$folder"); then
    echo "log scan: a key or secret reached a log line:" >&2
    echo "$found" | sed -E 's/(tg_(live|test)_[A-Za-z0-9]{4})[A-Za-z0-9]+/\1[…]/g; s/([sr]k_(live|test)_|whsec_|ya29\.)[A-Za-z0-9+\/=_-]+/\1[…]/g; s/eyJ[A-Za-z0-9_.-]+/eyJ[…]/g' | head -20 >&2
    exit 1
fi
echo "log scan: $files files, $lines lines, no API key or secret" >&2
