import Foundation
import Logging
import StripeWebhook
import TollgateDrivers
import TollgateModel
import TollgateRuntime

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

    /// The URL each function is served at locally, which is also its OIDC audience.
    public static func url(of function: String) -> String { "http://localhost:8080/\(function)" }
}

/// A function as the emulator runs it: the real handler behind the real runtime, on the
/// local ports, with the local OIDC issuer.
public struct EmulatedFunction: Sendable {
    public let declaration: FunctionDeclaration
    public let deliver: @Sendable (FunctionRequest) async -> FunctionResponse

    /// Every function Tollgate has, by name.
    public static let names = [StripeWebhookFunction.declaration.name]
    public static let declarations = [StripeWebhookFunction.declaration]

    /// Builds the named function over `ports`.
    /// - Throws: `NOT_FOUND` for an unknown function.
    public static func make(
        _ name: String, ports: Ports, issuer: LocalOIDCIssuer, webhookSecrets: [String], logger: Logger
    ) throws -> EmulatedFunction {
        switch name {
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

    static func wrap<Handler: FunctionHandler>(_ handler: Handler, ports: Ports, issuer: LocalOIDCIssuer, logger: Logger)
        -> EmulatedFunction
    {
        let declaration = handler.declaration
        let verifier = OIDCVerifier(
            issuers: [LocalOIDCIssuer.issuer], audiences: [LocalEnvironment.url(of: declaration.name)],
            allowedEmails: [LocalOIDCIssuer.serviceAccount], keys: issuer.keys, clock: ports.clock)
        let host = FunctionHost(
            handler: handler, store: ports.store, clock: ports.clock, verifier: declaration.trigger.requiresOIDC ? verifier : nil,
            logger: logger)
        return EmulatedFunction(declaration: declaration, deliver: { await host.handle($0) })
    }
}
