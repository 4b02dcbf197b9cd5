// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: model at the bottom; runtime, drivers and Stripe on it;
// the drivers registry above the drivers; functions above those; the emulator and the
// command line on top (see ARCHITECTURE.md).

let package = Package(
    name: "Tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .executable(name: "stripe-webhook", targets: ["stripe-webhook"]),
        .executable(name: "auth-validator", targets: ["auth-validator"]),
        .executable(name: "usage-recorder", targets: ["usage-recorder"]),
        .executable(name: "quota-reset", targets: ["quota-reset"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(name: "TollgateModel"),
        .target(
            name: "TollgateRuntime",
            dependencies: [
                "TollgateModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TollgateStripe",
            dependencies: ["TollgateModel", .product(name: "Crypto", package: "swift-crypto")]
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
            dependencies: ["TollgateModel", "TollgateRuntime", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "TollgateDrivers", dependencies: ["TollgateModel", "TollgateRuntime", "TollgateSQLite"]),

        // functions/<name>: the handler library; functions/<name>/main: its entry point.
        .target(
            name: "StripeWebhook",
            dependencies: ["TollgateModel", "TollgateRuntime", "TollgateStripe"],
            path: "functions/stripe-webhook",
            exclude: ["main"]
        ),
        .executableTarget(
            name: "stripe-webhook",
            dependencies: ["StripeWebhook", "TollgateRuntime", "TollgateDrivers"],
            path: "functions/stripe-webhook/main"
        ),

        .target(
            name: "AuthValidator",
            dependencies: ["TollgateModel", "TollgateRuntime", "TollgateAuth"],
            path: "functions/auth-validator",
            exclude: ["main"]
        ),
        .executableTarget(
            name: "auth-validator",
            dependencies: ["AuthValidator", "TollgateRuntime", "TollgateDrivers"],
            path: "functions/auth-validator/main"
        ),
        .target(
            name: "UsageRecorder",
            dependencies: ["TollgateModel", "TollgateRuntime"],
            path: "functions/usage-recorder",
            exclude: ["main"]
        ),
        .executableTarget(
            name: "usage-recorder",
            dependencies: ["UsageRecorder", "TollgateRuntime", "TollgateDrivers"],
            path: "functions/usage-recorder/main"
        ),
        .target(
            name: "QuotaReset",
            dependencies: ["TollgateModel", "TollgateRuntime"],
            path: "functions/quota-reset",
            exclude: ["main"]
        ),
        .executableTarget(
            name: "quota-reset",
            dependencies: ["QuotaReset", "TollgateRuntime", "TollgateDrivers"],
            path: "functions/quota-reset/main"
        ),

        .target(
            name: "TollgateEmulator",
            dependencies: [
                "TollgateModel", "TollgateRuntime", "TollgateStripe", "TollgateSQLite",
                "TollgateDrivers", "TollgateAuth", "StripeWebhook", "AuthValidator", "UsageRecorder", "QuotaReset",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "tollgate",
            dependencies: [
                "TollgateEmulator", "TollgateDrivers", "TollgateAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(
            name: "TollgateTests",
            dependencies: [
                "TollgateModel", "TollgateRuntime", "TollgateStripe", "TollgateSQLite",
                "TollgateDrivers", "TollgateEmulator", "TollgateAuth", "StripeWebhook", "stripe-webhook", "AuthValidator",
                "auth-validator", "UsageRecorder", "QuotaReset", "tollgate",
            ]
        ),
    ]
)
