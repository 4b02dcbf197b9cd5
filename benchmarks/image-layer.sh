#!/usr/bin/env bash
# The layer deploy/Dockerfile adds to the distroless base for each function, computed as
# the Dockerfile computes it (no Docker engine runs here): the static release binary,
# stripped, plus every shared library ldd lists except those distroless/base has (glibc,
# OpenSSL). Prints bytes on disk and gzipped (how a registry stores and Cloud Run pulls a
# layer). A benchmark, never a test. Usage: benchmarks/image-layer.sh [FUNCTION...]
set -euo pipefail
cd "$(dirname "$0")/.."
functions=("$@")
[[ ${#functions[@]} -gt 0 ]] || functions=(stripe-webhook auth-validator usage-recorder quota-reset usage-export usage-report cleanup)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| function | binary, stripped (MB) | shared libraries (MB) | layer (MB) | layer gzipped (MB) |\n|---|---|---|---|---|\n'
for function in "${functions[@]}"; do
    swift build -c release --static-swift-stdlib --scratch-path .build-release-static --product "$function" >&2
    rootfs="$work/$function"
    mkdir -p "$rootfs/usr/local/bin"
    cp ".build-release-static/release/$function" "$rootfs/usr/local/bin/function"
    strip "$rootfs/usr/local/bin/function"
    ldd "$rootfs/usr/local/bin/function" | awk '$3 ~ /^\// { print $3 }' \
        | grep -Ev '/(libc|libm|libdl|libpthread|librt|libssl|libcrypto)\.so' \
        | xargs -I{} cp --parents -L {} "$rootfs"
    binary=$(stat -c %s "$rootfs/usr/local/bin/function")
    total=$(du -sb "$rootfs" | cut -f1)
    gzipped=$(tar -C "$rootfs" -cf - . | gzip -6 | wc -c)
    mb() { echo "scale=1; $1 / 1000000" | bc; }
    printf '| %s | %s | %s | %s | %s |\n' "$function" "$(mb "$binary")" "$(mb $((total - binary)))" "$(mb "$total")" "$(mb "$gzipped")"
done
