// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: model at the bottom; runtime, drivers and Stripe on it;
// the drivers registry above the drivers; functions above those; the emulator and the
// command line on top (see docs/architecture.md).

/// The functions: the name each is deployed as, its handler module, what else it uses.
/// Adding a function adds one row here; the emulator and the tests depend on every row.
let functions: [(name: String, module: String, uses: [Target.Dependency])] = [
    ("stripe-webhook", "StripeWebhook", ["TollgateStripe", "TollgateAuth"]),
    ("clerk-webhook", "ClerkWebhook", ["TollgateAuth"]),
    ("account-api", "AccountAPI", ["TollgateAuth", "TollgateJOSE", "TollgateExport"]),
    (
        "auth-validator", "AuthValidator",
        ["TollgateAuth", "TollgateJOSE", "TollgateQuota", "TollgateRedis", .product(name: "Logging", package: "swift-log")]
    ),
    ("usage-recorder", "UsageRecorder", []),
    ("quota-reset", "QuotaReset", []),
    ("usage-export", "UsageExport", ["TollgateExport", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
    ("usage-report", "UsageReport", ["TollgateStripe", .product(name: "Crypto", package: "swift-crypto")]),
    ("cleanup", "Cleanup", ["TollgateExport"]),
    ("health", "Health", []),
]

/// Every function's handler library, and every function's executable.
let functionLibraries: [Target.Dependency] = functions.map { .target(name: $0.module) }
let functionExecutables: [Target.Dependency] = functions.map { .target(name: $0.name) } + ["tollgate-functions"]

/// A function is one folder: `functions/<name>` is its handler library (`module`), and
/// `functions/<name>/main` its entry point, an executable named as deployed.
func function(_ name: String, module: String, uses: [Target.Dependency]) -> [Target] {
    [
        .target(
            name: module, dependencies: ["TollgateModel", "TollgateRuntime"] + uses, path: "functions/\(name)",
            exclude: ["main", "README.md"]),
        .executableTarget(
            name: name, dependencies: [.target(name: module), "TollgateRuntime", "TollgateDrivers"] + uses, path: "functions/\(name)/main"),
    ]
}

/// What the tests of the runtime, the functions, the emulator and the whole system share.
let emulated: [Target.Dependency] = [
    "TollgateRuntime", "TollgateSQLite", "TollgateStripe", "TollgateJOSE", "TollgateEmulator", "TollgateTesting",
]

let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

/// A test target in `Tests/NAME`: the model and the shared test support, what its layer
/// tests, and (for the end-to-end tests) every function's library and executable.
func tests(_ name: String, _ uses: [Target.Dependency], runsFunctions: Bool = false) -> Target {
    .testTarget(
        name: name,
        dependencies: ["TollgateModel", "TollgateTestSupport"] + uses + (runsFunctions ? functionLibraries + functionExecutables : []))
}

let package = Package(
    name: "Tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .executable(name: "tollgate-functions", targets: ["tollgate-functions"]),
        // What tests and the emulator share, never linked into a function.
        .library(name: "TollgateTesting", targets: ["TollgateTesting"]),
    ]
        + functions.map { .executable(name: $0.name, targets: [$0.name]) },
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "TollgateModel"),
        // The system libraries, through typed C wrappers (variadic and macro APIs).
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        .target(name: "TollgateHTTP", dependencies: ["TollgateModel", "CCurl"]),
        // Memorystore (Redis): a small RESP client over SwiftNIO, for auth-validator's quota.
        .target(
            name: "TollgateRedis",
            dependencies: [
                "TollgateModel", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Quota as a library: the window book, leases and the Redis-held leases that
        // auth-validator decides with and the simulator models (docs/quota-leases.md).
        .target(name: "TollgateQuota", dependencies: ["TollgateModel", "TollgateRedis"]),
        .target(
            name: "TollgateExport",
            dependencies: ["TollgateModel", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // JWT, JWKS and OIDC verification: read tokens without an HTTP server.
        .target(
            name: "TollgateJOSE",
            dependencies: [
                "TollgateModel", "TollgateHTTP", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // What tests and the emulator share: the local OIDC issuer (Google's and Clerk's
        // stand-in), a gzip reader for exports. Production executables never link it.
        .target(
            name: "TollgateTesting",
            dependencies: [
                "TollgateModel", "TollgateJOSE", "CZlib", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "TollgateRuntime",
            dependencies: [
                "TollgateModel", "TollgateHTTP", "TollgateJOSE",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "TollgateStripe",
            dependencies: ["TollgateModel", "TollgateHTTP", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TollgateSQLite",
            dependencies: [
                "TollgateModel", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "TollgateAuth",
            dependencies: ["TollgateModel", "TollgateJOSE", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TollgateGoogle",
            dependencies: [
                "TollgateModel", "TollgateHTTP", "TollgateJOSE", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "TollgateDrivers", dependencies: ["TollgateModel", "TollgateRuntime", "TollgateSQLite", "TollgateGoogle"]),
    ]
        + functions.flatMap { function($0.name, module: $0.module, uses: $0.uses) }
        + [
            // The registry: every function, once.
            .target(name: "TollgateFunctions", dependencies: ["TollgateModel", "TollgateRuntime"] + functionLibraries),
            // Every function in one executable, the one image deployed: K_SERVICE chooses.
            .executableTarget(name: "tollgate-functions", dependencies: ["TollgateFunctions", "TollgateDrivers", "TollgateRuntime"]),
            .target(
                name: "TollgateEmulator",
                dependencies: [
                    "TollgateModel", "TollgateRuntime", "TollgateStripe", "TollgateSQLite", "TollgateDrivers", "TollgateAuth",
                    "TollgateExport", "TollgateHTTP", "TollgateJOSE", "TollgateTesting", "TollgateFunctions",
                    .product(name: "Crypto", package: "swift-crypto"), .product(name: "Hummingbird", package: "hummingbird"),
                ]
            ),
            // Pub/Sub's gRPC Publisher for `tollgate serve` (code generated from the .proto
            // by generate.sh, committed).
            .target(
                name: "TollgatePubSubGRPC",
                dependencies: [
                    "TollgateModel", "TollgateEmulator", .product(name: "GRPCCore", package: "grpc-swift-2"),
                    .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                    .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                ],
                exclude: ["pubsub_publisher.proto", "generate.sh"]),
            // The discrete-event simulation of auth-validator's quota paths against a model
            // of Firestore (`tollgate simulate quota`).
            .target(name: "TollgateQuotaSimulator", dependencies: ["TollgateModel", "TollgateQuota"]),
            .executableTarget(
                name: "tollgate",
                dependencies: [
                    "TollgateEmulator", "TollgatePubSubGRPC", "TollgateQuotaSimulator", "TollgateDrivers", "TollgateAuth", "TollgateJOSE",
                    "TollgateTesting",
                    "TollgateExport",
                    "UsageExport", "Cleanup",
                    "TollgateGoogle",
                    "TollgateHTTP", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ]
            ),

            // The fuzz targets, and libFuzzer's driver for them (Tests/Fuzz/run.sh builds it
            // with --sanitize=fuzzer).
            .target(
                name: "TollgateFuzzTargets",
                dependencies: [
                    "TollgateModel", "TollgateRuntime", "TollgateStripe", "TollgateEmulator", "TollgateDrivers", "TollgateSQLite",
                    "TollgateAuth", "TollgateJOSE", "TollgateTesting", .product(name: "Logging", package: "swift-log"),
                ],
                path: "Tests/Fuzz/Targets"),
            .executableTarget(name: "tollgate-fuzz", dependencies: ["TollgateFuzzTargets"], path: "Tests/Fuzz/Driver"),
            // What the test targets share: peers, scratch files, processes, expectations.
            .target(
                name: "TollgateTestSupport",
                dependencies: [
                    "TollgateModel", "TollgateRuntime", "TollgateSQLite", "TollgateAuth", "TollgateHTTP", "TollgateStripe",
                    "TollgateGoogle", "TollgateJOSE", "TollgateTesting", "TollgateExport", .product(name: "Logging", package: "swift-log"),
                ],
                path: "Tests/TollgateTestSupport"),
            // One test target per module or layer: the model, the drivers (with the ports'
            // contract suites), quota, Auth, Stripe, JOSE, the runtime, the functions (a
            // folder each), the emulator, and the whole system (hostile input, crashes,
            // gateways, fuzz regressions).
            tests("TollgateModelTests", []),
            tests(
                "TollgateDriverTests",
                [
                    "TollgateSQLite", "TollgateGoogle", "TollgateHTTP", "TollgateStripe", "TollgateAuth", "TollgateJOSE",
                    "TollgateEmulator", "TollgateRedis",
                    "TollgateRuntime", "TollgateTesting", "tollgate", .product(name: "Crypto", package: "swift-crypto"),
                    .product(name: "_CryptoExtras", package: "swift-crypto"),
                ]),
            tests("TollgateQuotaTests", ["TollgateQuota", "TollgateSQLite", "TollgateRedis", "TollgateEmulator"]),
            tests("TollgateAuthTests", ["TollgateAuth", "TollgateJOSE", "TollgateRuntime", "TollgateSQLite", "TollgateTesting"]),
            tests(
                "TollgateStripeTests",
                [
                    "TollgateStripe", "TollgateEmulator", "TollgateHTTP", "TollgateJOSE", "TollgateRuntime", "TollgateSQLite",
                    .product(name: "Logging", package: "swift-log"),
                ]),
            tests(
                "TollgateJOSETests",
                [
                    "TollgateJOSE", "TollgateEmulator", "TollgateHTTP", "TollgateRuntime", "TollgateSQLite", "TollgateStripe",
                    .product(name: "Logging", package: "swift-log"),
                ]),
            tests("TollgateRuntimeTests", emulated + ["TollgateDrivers", serviceLifecycle], runsFunctions: true),
            tests(
                "FunctionTests",
                emulated + [
                    "TollgateAuth", "TollgateExport", "TollgateRedis", "TollgateGoogle", .product(name: "Crypto", package: "swift-crypto"),
                ],
                runsFunctions: true),
            tests(
                "TollgateEmulatorTests", emulated + ["TollgateAuth", "TollgateExport", "TollgateDrivers", "TollgateGoogle", "tollgate"],
                runsFunctions: true),
            tests(
                "TollgateSystemTests",
                emulated + [
                    "TollgateAuth", "TollgateExport", "TollgateDrivers", "TollgateHTTP", "TollgateFuzzTargets", "tollgate",
                    .product(name: "GRDB", package: "GRDB.swift"),
                ], runsFunctions: true),
        ]
)
