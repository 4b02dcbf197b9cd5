#!/usr/bin/env bash
# Regenerates Generated/*.swift from pubsub_publisher.proto. The output is committed, so
# a build never runs this; run it only after changing the .proto. It builds the two
# protoc plugins once in .build-protoc (a few minutes the first time) and needs
# protoc with Google's well-known types (Debian: protobuf-compiler, libprotobuf-dev).
# PROTOC_PLUGINS=DIR uses plugins built elsewhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="$root/.build-protoc"

command -v protoc >/dev/null || apt-get install -y -q protobuf-compiler libprotobuf-dev >/dev/null

if [[ -n "${PROTOC_PLUGINS:-}" ]]; then bin="$PROTOC_PLUGINS"; else
mkdir -p "$scratch/Sources/Plugins"
cat > "$scratch/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [.target(name: "Plugins")]
)
SWIFT
echo "// Only here so the package has a target." > "$scratch/Sources/Plugins/Empty.swift"
(cd "$scratch" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2) >&2
bin="$(cd "$scratch" && swift build -c release --show-bin-path)"
fi

protoc --proto_path="$here" --proto_path=/usr/include \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$here/Generated" --swift_opt=Visibility=Internal \
    --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" --grpc-swift_out="$here/Generated" \
    --grpc-swift_opt=Visibility=Internal,Server=true,Client=false \
    "$here/pubsub_publisher.proto"
echo "generated: $(ls "$here/Generated")"
