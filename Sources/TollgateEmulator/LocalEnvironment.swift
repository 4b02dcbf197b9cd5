import Crypto
import Foundation
import Logging
import Synchronization
import TollgateAuth
import TollgateDrivers
import TollgateExport
import TollgateFunctions
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateStripe
import TollgateTesting

/// The values the emulator supplies where the cloud has Secret Manager and settings.
/// They are local stand-ins, never real secrets.
public enum LocalEnvironment {
    /// Webhook secrets by the names fixtures use (`current`, `previous`, `unrelated`).
    public static let webhookSecrets = [
        "current": "whsec_tollgate_emulator_current", "previous": "whsec_tollgate_emulator_previous",
        "unrelated": "whsec_tollgate_emulator_unrelated",
    ]

    /// Svix (Clerk) signing secrets by the same names: `whsec_` and base64 of 24 bytes.
    public static let svixSecrets = [
        "current": "whsec_" + Data("tollgate-clerk-current-1".utf8).base64EncodedString(),
        "previous": "whsec_" + Data("tollgate-clerk-previous1".utf8).base64EncodedString(),
        "unrelated": "whsec_" + Data("tollgate-clerk-unrelated".utf8).base64EncodedString(),
    ]

    /// The secret Checkout references are minted and verified with locally, by the same
    /// names; a reference made under `unrelated` is what a forger makes.
    public static let checkoutSecrets = [
        "current": "tollgate-emulator-checkout-reference-current", "previous": "tollgate-emulator-checkout-reference-previous",
        "unrelated": "tollgate-emulator-checkout-reference-unrelated",
    ]

    /// The price ids the fixtures use, and their tiers.
    public static let priceTiers = "price_free_monthly=free,price_pro_monthly=pro,price_enterprise_monthly=enterprise,plan_pro_legacy=pro"

    /// The pepper API keys are hashed with locally (a stand-in, never a production value).
    public static let keyPepper = "tollgate-emulator-local-pepper-not-a-secret"

    /// The emulator's Clerk instance and the origin its sessions are issued to.
    public static let clerkIssuer = "https://clerk.tollgate.local"
    public static let clerkAuthorizedParty = "https://app.tollgate.local"

    /// The Ed25519 key replays sign exports with (32 bytes, base64; never production): a
    /// constant, so a fixture's manifest digest is the same on every machine.
    public static let exportSigningKey = Data(Array("tollgate-emulator-export-key-v1!".utf8)).base64EncodedString()

    /// The export signing key of the local cloud whose state is `statePath`: made the first
    /// time (a fresh Ed25519 key, kept beside the state as `{state}.export-signing-key`,
    /// readable by its owner only) and the same for that state ever after, so no two local
    /// clouds share a private key that anyone could read in this repository.
    public static func exportSigningKey(beside statePath: String) throws -> String {
        let path = statePath + ".export-signing-key"
        if let kept = FileManager.default.contents(atPath: path) { return String(decoding: kept, as: UTF8.self) }
        let made = ExportSigner.generate()
        // Created only if absent: of two processes starting on one state, the first key stays.
        if FileManager.default.createFile(atPath: path + ".\(getpid())", contents: Data(made.utf8), attributes: [.posixPermissions: 0o600])
        {
            defer { try? FileManager.default.removeItem(atPath: path + ".\(getpid())") }
            if link(path + ".\(getpid())", path) == 0 { return made }
        }
        guard let kept = FileManager.default.contents(atPath: path) else {
            throw TollgateError(.unavailable, "cannot keep the local export signing key at \(path)")
        }
        return String(decoding: kept, as: UTF8.self)
    }

    /// The key `tollgate` commands sign or describe exports with for a local state:
    /// `{state}.export-signing-key` when the local cloud made one, else the replays' key.
    public static func exportSigningKey(forState statePath: String) -> String {
        FileManager.default.contents(atPath: statePath + ".export-signing-key").map { String(decoding: $0, as: UTF8.self) }
            ?? exportSigningKey
    }

    /// The URL each function is served at locally, which is also its OIDC audience.
    public static func url(of function: String) -> String { "http://localhost:8080/\(function)" }
}

extension LocalEnvironment {
    /// The local value of every secret a function may declare, of the shape its
    /// production value has; `webhookSecrets` names the webhook secrets in use (two while
    /// a rotation is replayed).
    public static func secretStandIns(
        webhookSecrets: [String] = ["current"], exportSigningKey: String = LocalEnvironment.exportSigningKey
    ) throws -> [String: String] {
        let stripeSecrets = try webhookSecrets.map { name in
            guard let secret = Self.webhookSecrets[name] else {
                throw TollgateError(.invalidArgument, "no local webhook secret named \(name)")
            }
            return secret
        }
        let clerkSecrets = webhookSecrets.compactMap { svixSecrets[$0] }
        let checkoutSecrets = webhookSecrets.compactMap { Self.checkoutSecrets[$0] }
        return [
            "STRIPE_WEBHOOK_SECRET": stripeSecrets.joined(separator: ","), "CLERK_WEBHOOK_SECRET": clerkSecrets.joined(separator: ","),
            "TOLLGATE_KEY_PEPPER": keyPepper, "TOLLGATE_CHECKOUT_SECRET": checkoutSecrets.joined(separator: ","),
            "TOLLGATE_EXPORT_SIGNING_KEY": exportSigningKey, "STRIPE_API_KEY": StripeFakeServer.apiKey,
        ]
    }

    /// The environment a function's service gets, pointed at the local cloud: what
    /// `serve --processes` starts each executable with, and what replay and serve build
    /// each function from in process, through the same constructor
    /// (``BuildableFunction/make(_:)``). Only the sizes differ by profile, as settings.
    /// - Parameters:
    ///   - statePath: the state file the executable opens its ports on; nil in process,
    ///     where the ports are given.
    ///   - keys: where the local issuers' keys are published (JWKS files).
    public static func environment(
        for declaration: FunctionDeclaration, statePath: String? = nil, keys: LocalKeys, stripeBaseURL: String,
        profile: EmulatedFunction.Profile = .replay, quotaPeriod: QuotaPeriod = .month, webhookSecrets: [String] = ["current"],
        exportSigningKey: String = LocalEnvironment.exportSigningKey
    ) throws -> [String: String] {
        var environment = [
            "K_SERVICE": declaration.name, "K_REVISION": "\(declaration.name)-local", "TOLLGATE_LOG_LEVEL": "info",
            "TOLLGATE_AUDIENCE": url(of: declaration.name), "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
            "TOLLGATE_OIDC_ISSUERS": LocalOIDCIssuer.issuer, "TOLLGATE_OIDC_JWKS": keys.oidc.absoluteString,
        ]
        if let statePath { environment["TOLLGATE_STORE"] = "sqlite://\(statePath)" }
        let localSecrets = try secretStandIns(webhookSecrets: webhookSecrets, exportSigningKey: exportSigningKey)
        for secret in declaration.secrets {
            guard let value = localSecrets[secret] else {
                throw TollgateError(.internal, "no local stand-in for \(declaration.name)'s secret \(secret)")
            }
            environment[secret] = value
        }
        // The declared settings, with other functions' URLs as the local cloud serves them
        // and the platform team's values (Terraform's variables) as local ones.
        let platform = ["{price_tiers}": priceTiers, "{clerk_issuer}": clerkIssuer, "{dashboard_origins}": clerkAuthorizedParty]
        for (name, value) in declaration.settings {
            var local = value.replacingOccurrences(of: #"\{url:([a-z0-9-]+)\}"#, with: url(of: "$1"), options: .regularExpression)
            for (placeholder, stand) in platform { local = local.replacingOccurrences(of: placeholder, with: stand) }
            guard !local.contains("{") else {
                throw TollgateError(.internal, "no local stand-in for \(declaration.name)'s setting \(name)=\(value)")
            }
            environment[name] = local
        }
        // What a platform team sets in the cloud: local values.
        let local: [String: String] = [
            "TOLLGATE_QUOTA_PERIOD": quotaPeriod.rawValue,
            "TOLLGATE_CLERK_ISSUER": clerkIssuer, "TOLLGATE_CLERK_JWKS_URL": keys.clerk.absoluteString,
            "TOLLGATE_CLERK_AUTHORIZED_PARTIES": clerkAuthorizedParty, "TOLLGATE_DASHBOARD_ORIGINS": clerkAuthorizedParty,
            "TOLLGATE_ENDPOINT_FEATURES": "/v1/jobs=asyncJobs,/v1/diffusion=diffusionGating",
        ]
        environment.merge(local) { declared, _ in declared }
        // Whoever holds a Stripe key calls the Stripe fake, with no retries inside a call
        // (the queue's retries are what the emulator shows) and a long timeout (a timeout
        // would be a retry the fixture did not ask for).
        if declaration.secrets.contains("STRIPE_API_KEY") {
            environment.merge([
                "TOLLGATE_STRIPE_API_BASE": stripeBaseURL, "TOLLGATE_STRIPE_MAX_RETRIES": "0", "TOLLGATE_STRIPE_TIMEOUT_SECONDS": "60",
            ]) { declared, _ in declared }
        }
        // Replays use tiny pages and parts, so that a few fixture records exercise paging,
        // multi-part exports and short retention.
        if profile == .replay {
            environment.merge([
                "TOLLGATE_EXPORT_PART_RECORDS": "5", "TOLLGATE_EXPORT_PAGE_SIZE": "4", "TOLLGATE_QUOTA_RESET_PAGE_SIZE": "2",
                "TOLLGATE_RETENTION_LEDGER_DAYS": "35", "TOLLGATE_RETENTION_EXPORT_DAYS": "60", "TOLLGATE_RETENTION_KEY_DAYS": "30",
                "TOLLGATE_CLEANUP_PAGE_SIZE": "50",
            ]) { _, small in small }
        }
        // Every setting the function cannot start without has its local stand-in: a new
        // required setting fails here, naming itself, rather than at a replay's start-up.
        for setting in declaration.reads where setting.isRequired && (environment[setting.name] ?? "").isEmpty {
            throw TollgateError(.internal, "no local stand-in for \(declaration.name)'s setting \(setting.name)")
        }
        return environment
    }

    /// Where the `tollgate` commands of the local cloud find `tollgate serve`.
    public static let serveURLSetting = Setting(
        "TOLLGATE_SERVE_URL", default: "http://127.0.0.1:8080", summary: "where the local cloud's commands find `tollgate serve`")
}

/// Where the emulator publishes its local issuers' keys, as JWKS files: Google's OIDC
/// stand-in and the local Clerk instance. Functions read them as they read Google's and
/// Clerk's JWKS URLs.
public struct LocalKeys: Sendable {
    public let oidc: URL
    public let clerk: URL

    /// Writes (once per key) each issuer's JWKS into a folder of this process's.
    public init(oidc: LocalOIDCIssuer, clerk: LocalOIDCIssuer) throws {
        self.oidc = try Self.publish(oidc)
        self.clerk = try Self.publish(clerk)
    }

    /// Each process's folder is this and its pid.
    public static let folderPrefix = "tollgate-keys-"

    static func publish(_ issuer: LocalOIDCIssuer) throws -> URL {
        let document = Data(issuer.jwksDocument.rendered().utf8)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(folderPrefix)\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        removedAtExit(folder.path)
        let file = folder.appendingPathComponent("\(Hex.encode(SHA256.hash(data: document).prefix(12))).json")
        if !FileManager.default.fileExists(atPath: file.path) { try document.write(to: file, options: .atomic) }
        return file
    }
}

/// A function as the emulator runs it: the real handler behind the real runtime, built
/// through its own constructor from the environment its service would get, on the local
/// ports, with the local issuers.
public struct EmulatedFunction: Sendable {
    public let declaration: FunctionDeclaration
    public let deliver: @Sendable (FunctionRequest) async -> FunctionResponse
    /// What the function does once its server has drained (SIGTERM): auth-validator
    /// returns its leases of quota. A replay and `serve` call it when they stop.
    public let drain: @Sendable () async -> Void

    public init(
        declaration: FunctionDeclaration, deliver: @escaping @Sendable (FunctionRequest) async -> FunctionResponse,
        drain: @escaping @Sendable () async -> Void = {}
    ) {
        self.declaration = declaration
        self.deliver = deliver
        self.drain = drain
    }

    /// Every function Tollgate has (the registry, ``TollgateFunctions``).
    public static let functions = TollgateFunctions.all
    public static let declarations = functions.map { $0.declaration }
    public static var names: [String] { declarations.map(\.name) }

    /// How the functions are sized: `replay` uses tiny pages and parts so that a few
    /// fixture records exercise paging, multi-part exports and short retention; `cloud`
    /// uses the functions' production defaults (what `tollgate serve` runs).
    public enum Profile: Sendable {
        case replay, cloud
    }

    /// The function of that name.
    /// - Throws: `NOT_FOUND` for an unknown name.
    public static func type(named name: String) throws -> any BuildableFunction.Type {
        guard let function = functions.first(where: { $0.declaration.name == name }) else {
            throw TollgateError(.notFound, "no function named \(name); known: \(names.joined(separator: ", "))")
        }
        return function
    }

    /// Builds the named function over `ports` through its constructor, from
    /// ``LocalEnvironment/environment(for:statePath:keys:stripeBaseURL:profile:quotaPeriod:webhookSecrets:)``.
    /// - Throws: `NOT_FOUND` for an unknown function; ``ConfigurationError`` as start-up would.
    public static func make(
        _ name: String, ports: Ports, issuer: LocalOIDCIssuer, clerk: LocalOIDCIssuer, webhookSecrets: [String],
        quotaPeriod: QuotaPeriod = .month, stripeBaseURL: String = "http://127.0.0.1:1", profile: Profile = .replay,
        exportSigningKey: String = LocalEnvironment.exportSigningKey, logger: Logger
    ) throws -> EmulatedFunction {
        let function = try type(named: name)
        let environment = try LocalEnvironment.environment(
            for: function.declaration, keys: try LocalKeys(oidc: issuer, clerk: clerk), stripeBaseURL: stripeBaseURL, profile: profile,
            quotaPeriod: quotaPeriod, webhookSecrets: webhookSecrets, exportSigningKey: exportSigningKey)
        return try host(
            function, setup: try FunctionSetup(environment: Environment(environment), ports: ports, declaration: function.declaration),
            logger: logger)
    }

    /// Builds the named function over `ports` from its service's own environment (settings
    /// and resolved secrets), with only its OIDC check pointed at `issuer`: how an operator
    /// hands it a delivery in process.
    /// - Throws: `NOT_FOUND` for an unknown function; ``ConfigurationError`` naming what
    ///   the environment lacks, as start-up would.
    public static func make(
        _ name: String, serviceEnvironment: Environment, ports: Ports, issuer: LocalOIDCIssuer, logger: Logger
    ) throws -> EmulatedFunction {
        let function = try type(named: name)
        var environment = serviceEnvironment.values
        environment.merge([
            "K_SERVICE": name, "TOLLGATE_AUDIENCE": LocalEnvironment.url(of: name), "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
            "TOLLGATE_OIDC_ISSUERS": LocalOIDCIssuer.issuer, "TOLLGATE_OIDC_JWKS": try LocalKeys.publish(issuer).absoluteString,
        ]) { _, replay in replay }
        return try host(
            function, setup: try FunctionSetup(environment: Environment(environment), ports: ports, declaration: function.declaration),
            logger: logger)
    }

    static func host<Function: BuildableFunction>(_ function: Function.Type, setup: FunctionSetup, logger: Logger) throws
        -> EmulatedFunction
    {
        let host = try FunctionHost<Function>.make(setup, logger: logger)
        return EmulatedFunction(
            declaration: Function.declaration, deliver: { await host.handle($0) }, drain: { await host.handler.drained() })
    }
}

/// The folders of published keys this process made: removed when it exits, so no run
/// leaves them behind in the temporary directory. A process killed (SIGKILL, out of
/// memory) cannot: the next one to publish removes the folders of processes now gone.
private let publishedFolders = Mutex<Set<String>>([])

private func removedAtExit(_ folder: String) {
    let first = publishedFolders.withLock { folders in
        defer { folders.insert(folder) }
        return folders.isEmpty
    }
    guard first else { return }
    EndedProcessFolders.remove(prefix: LocalKeys.folderPrefix)
    atexit {
        for folder in publishedFolders.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: folder) }
    }
}
