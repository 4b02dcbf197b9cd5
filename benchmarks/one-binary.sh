#!/usr/bin/env bash
# Would one binary serving whichever function K_SERVICE names (Cloud Run sets it to the
# service's name) cost the functions anything? Builds, in a scratch clone, a
# `tollgate-functions` executable over the registry beside auth-validator (static
# release, as deploy/Dockerfile builds), then compares stripped and gzipped sizes, cold
# start to /healthz and idle memory, alternating starts in one run. A benchmark, never a
# test. Usage: benchmarks/one-binary.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/tollgate"
mkdir -p "$work/tollgate/Sources/tollgate-functions"
cat > "$work/tollgate/Sources/tollgate-functions/main.swift" <<'SWIFT'
import Foundation
import TollgateDrivers
import TollgateFunctions
import TollgateRuntime

func serve<Function: BuildableFunction>(_ function: Function.Type) async { await FunctionMain.run(function) }

let name = ProcessInfo.processInfo.environment["K_SERVICE"] ?? ""
guard let function = TollgateFunctions.all.first(where: { $0.declaration.name == name }) else {
    FileHandle.standardError.write(Data("K_SERVICE names no function: '\(name)'\n".utf8))
    exit(78)
}
await serve(function)
SWIFT
sed -i 's|            .target(name: "TollgateFunctions"|            .executableTarget(name: "tollgate-functions", dependencies: ["TollgateFunctions", "TollgateDrivers", "TollgateRuntime"]),\n            .target(name: "TollgateFunctions"|' "$work/tollgate/Package.swift"
for product in tollgate-functions auth-validator; do
    (cd "$work/tollgate" && swift build -c release --static-swift-stdlib --scratch-path .build-one-binary --product "$product" >&2)
    cp "$work/tollgate/.build-one-binary/release/$product" "$work/$product"
    strip "$work/$product"
done
printf '| binary | stripped (MB) | gzipped (MB) |\n|---|---|---|\n'
for product in auth-validator tollgate-functions; do
    printf '| %s | %s | %s |\n' "$product" "$(echo "scale=2; $(stat -c %s "$work/$product") / 1000000" | bc)" \
        "$(echo "scale=2; $(gzip -6 -c "$work/$product" | wc -c) / 1000000" | bc)"
done
echo
python3 benchmarks/one_binary_start.py "$work/auth-validator" "$work/tollgate-functions" "${1:-15}"
