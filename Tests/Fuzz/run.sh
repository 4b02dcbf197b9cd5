#!/usr/bin/env bash
# Fuzzes every decoder that reads untrusted bytes with libFuzzer, SECONDS each (default 30;
# CI passes a short budget, longer runs are on demand: `Tests/Fuzz/run.sh 600 jwt`).
#   Tests/Fuzz/run.sh [SECONDS] [TARGET…]
# Seeds: Tests/Fuzz/seeds/<target>, the Stripe payloads and the fixtures under events/,
# and every earlier finding in Tests/Fuzz/regressions/<target>. A crash is copied into
# regressions/ (commit it: the tests replay it from then on) and the script fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-30}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(pubsub-envelope cloudevent stripe-signature stripe-event jwt fixture
    path-stripe-webhook path-stripe-signature-header path-auth-validator path-usage-recorder path-usage-report
    path-quota-reset path-usage-export path-cleanup checkout-reference path-clerk-webhook)

# Its own scratch folder: a sanitized build must not replace the plain one.
swift build --sanitize=fuzzer --scratch-path .build-fuzz --product tollgate-fuzz >&2
binary=.build-fuzz/debug/tollgate-fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus" "Tests/Fuzz/regressions/$target"
    if [ -d "Tests/Fuzz/seeds/$target" ]; then cp Tests/Fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true; fi
    case "$target" in
        stripe-event | path-stripe-webhook) cp events/stripe/payloads/*.json "$corpus"/ ;;
        path-clerk-webhook) cp events/clerk/payloads/*.json "$corpus"/ ;;
        fixture) find events -name '*.json' -not -path '*/payloads/*' -exec cp {} "$corpus"/ \; ;;
    esac
    cp "Tests/Fuzz/regressions/$target"/* "$corpus"/ 2>/dev/null || true
    rm -f "$corpus"/README.md
    echo "fuzz: $target for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)" >&2
    # SWIFT_BACKTRACE=enable=no lets libFuzzer, not Swift's backtracer, handle the trap
    # and write the crashing input.
    if ! SWIFT_BACKTRACE=enable=no TOLLGATE_FUZZ_TARGET="$target" "$binary" "$corpus" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/$target-" -print_final_stats=1 >"$work/$target.log" 2>&1; then
        tail -30 "$work/$target.log" >&2
        for crash in "$work/$target"-*; do
            [ -e "$crash" ] || continue
            cp "$crash" "Tests/Fuzz/regressions/$target/$(basename "$crash" | sed "s/^$target-//")"
            echo "fuzz: $target crashed; the input is now Tests/Fuzz/regressions/$target/$(basename "$crash" | sed "s/^$target-//")" >&2
        done
        failed=1
    else
        grep -E "stat::number_of_executed_units|cov:" "$work/$target.log" | tail -2 | sed "s/^/fuzz: $target /" >&2
    fi
done
exit $failed
