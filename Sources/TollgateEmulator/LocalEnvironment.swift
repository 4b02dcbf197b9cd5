import AuthValidator
import Cleanup
import Foundation
import Logging
import QuotaReset
import StripeWebhook
import TollgateAuth
import TollgateDrivers
import TollgateExport
import TollgateModel
import TollgateRuntime
import TollgateStripe
import UsageExport
import UsageRecorder
import UsageReport

/// The values the emulator supplies where the cloud has Secret Manager and settings.
/// They are local stand-ins, never real secrets.
public enum LocalEnvironment {
    /// Webhook secrets by the names fixtures use (`current`, `previous`, `unrelated`).
    public static let webhookSecrets = [
        "current": "whsec_tollgate_emulator_current", "previous": "whsec_tollgate_emulator_previous",
        "unrelated": "whsec_tollgate_emulator_unrelated",
    ]

    /// The price ids the fixtures use, and their tiers.
    public static let priceTiers = "price_free_monthly=free,price_pro_monthly=pro,price_enterprise_monthly=enterprise,plan_pro_legacy=pro"

    /// The pepper API keys are hashed with locally (a stand-in, never a production value).
    public static let keyPepper = "tollgate-emulator-local-pepper-not-a-secret"

    /// The emulator's Clerk instance and the origin its sessions are issued to.
    public static let clerkIssuer = "https://clerk.tollgate.local"
    public static let clerkAuthorizedParty = "https://app.tollgate.local"

    /// The Ed25519 key exports are signed with locally (32 bytes, base64; never production).
    public static let exportSigningKey = Data(Array("tollgate-emulator-export-key-v1!".utf8)).base64EncodedString()

    /// The URL each function is served at locally, which is also its OIDC audience.
    public static func url(of function: String) -> String { "http://localhost:8080/\(function)" }
}

/// A function as the emulator runs it: the real handler behind the real runtime, on the
/// local ports, with the local OIDC issuer.
public struct EmulatedFunction: Sendable {
    public let declaration: FunctionDeclaration
    public let deliver: @Sendable (FunctionRequest) async -> FunctionResponse

    /// Every function Tollgate has.
    public static let declarations = [
        StripeWebhookFunction.declaration, AuthValidatorFunction.declaration, UsageRecorderFunction.declaration,
        QuotaResetFunction.declaration, UsageExportFunction.declaration, UsageReportFunction.declaration, CleanupFunction.declaration,
    ]
    public static var names: [String] { declarations.map(\.name) }

    /// How the functions are sized: `replay` uses tiny pages and parts so that a few
    /// fixture records exercise paging, multi-part exports and short retention; `cloud`
    /// uses the functions' production defaults (what `tollgate serve` runs).
    public enum Profile: Sendable {
        case replay, cloud
    }

    /// Builds the named function over `ports`.
    /// - Throws: `NOT_FOUND` for an unknown function.
    public static func make(
        _ name: String, ports: Ports, issuer: LocalOIDCIssuer, clerk: LocalOIDCIssuer, webhookSecrets: [String],
        quotaPeriod: QuotaPeriod = .month, stripeBaseURL: String = "http://127.0.0.1:1", profile: Profile = .replay, logger: Logger
    ) throws -> EmulatedFunction {
        let replay = profile == .replay
        switch name {
        case UsageExportFunction.declaration.name:
            let reportURL = LocalEnvironment.url(of: UsageReportFunction.declaration.name)
            let exporter = UsageExporter(
                configuration: replay
                    ? .init(partRecords: 5, pageSize: 4, reportQueue: Queue.usageReports, reportURL: reportURL)
                    : .init(reportQueue: Queue.usageReports, reportURL: reportURL),
                store: ports.store, blobs: ports.blobs, tasks: ports.tasks,
                signer: try ExportSigner(base64: LocalEnvironment.exportSigningKey),
                clock: ports.clock)
            return wrap(UsageExportFunction(exporter: exporter), ports: ports, issuer: issuer, logger: logger)
        case UsageReportFunction.declaration.name:
            // No in-call retries: the queue's retries are what the emulator shows. A long
            // timeout: a timeout would be a retry the fixture did not ask for.
            let stripe = StripeClient(
                configuration: .init(baseURL: stripeBaseURL, apiKey: StripeFakeServer.apiKey, maxNetworkRetries: 0, timeout: .seconds(60)))
            return wrap(UsageReportFunction(store: ports.store, billing: stripe), ports: ports, issuer: issuer, logger: logger)
        case CleanupFunction.declaration.name:
            let handler = CleanupFunction(
                store: ports.store, blobs: ports.blobs, layout: ExportLayout(),
                retention: replay ? Retention(ledgerDays: 35, exportDays: 60, keyDays: 30) : Retention(),
                pageSize: replay ? 50 : 500)
            return wrap(handler, ports: ports, issuer: issuer, logger: logger)
        case AuthValidatorFunction.declaration.name:
            let verifier = ClerkSessionVerifier(
                issuer: LocalEnvironment.clerkIssuer, authorizedParties: [LocalEnvironment.clerkAuthorizedParty], keys: clerk.keys,
                clock: ports.clock)
            let configuration = AuthValidatorFunction.Configuration(
                keys: try APIKeys(pepper: LocalEnvironment.keyPepper), clerk: verifier, cacheTTLSeconds: 30, quotaPeriod: quotaPeriod,
                endpointFeatures: [("/v1/jobs", .asyncJobs), ("/v1/diffusion", .diffusionGating)])
            let handler = AuthValidatorFunction(
                configuration: configuration, store: ports.store, clock: ports.clock,
                invalidationVerifier: localVerifier(for: AuthValidatorFunction.declaration, issuer: issuer, clock: ports.clock))
            return wrap(handler, ports: ports, issuer: issuer, logger: logger)
        case UsageRecorderFunction.declaration.name:
            return wrap(UsageRecorderFunction(store: ports.store), ports: ports, issuer: issuer, logger: logger)
        case QuotaResetFunction.declaration.name:
            return wrap(
                QuotaResetFunction(store: ports.store, period: quotaPeriod, pageSize: replay ? 2 : 200), ports: ports, issuer: issuer,
                logger: logger)
        case StripeWebhookFunction.declaration.name:
            let secrets = try webhookSecrets.map { name in
                guard let secret = LocalEnvironment.webhookSecrets[name] else {
                    throw TollgateError(.invalidArgument, "no local webhook secret named \(name)")
                }
                return secret
            }
            let configuration = StripeWebhookFunction.Configuration(
                webhookSecrets: secrets, policy: try BillingPolicy(priceTiersSetting: LocalEnvironment.priceTiers))
            let handler = StripeWebhookFunction(configuration: configuration, store: ports.store, publisher: ports.publisher)
            return wrap(handler, ports: ports, issuer: issuer, logger: logger)
        default:
            throw TollgateError(.notFound, "no function named \(name); known: \(names.joined(separator: ", "))")
        }
    }

    /// The runtime's real OIDC check, trusting the local issuer for this function's URL.
    static func localVerifier(for declaration: FunctionDeclaration, issuer: LocalOIDCIssuer, clock: any TollgateModel.Clock) -> OIDCVerifier
    {
        OIDCVerifier(
            issuers: [LocalOIDCIssuer.issuer], audiences: [LocalEnvironment.url(of: declaration.name)],
            allowedEmails: [LocalOIDCIssuer.serviceAccount], keys: issuer.keys, clock: clock)
    }

    static func wrap<Handler: FunctionHandler>(_ handler: Handler, ports: Ports, issuer: LocalOIDCIssuer, logger: Logger)
        -> EmulatedFunction
    {
        let declaration = handler.declaration
        let verifier = localVerifier(for: declaration, issuer: issuer, clock: ports.clock)
        let host = FunctionHost(
            handler: handler, store: ports.store, clock: ports.clock, verifier: declaration.trigger.requiresOIDC ? verifier : nil,
            logger: logger)
        return EmulatedFunction(declaration: declaration, deliver: { await host.handle($0) })
    }
}
