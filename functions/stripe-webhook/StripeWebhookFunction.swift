import Foundation
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateStripe

/// `stripe-webhook`: Stripe's calls, verified, deduplicated by event id, applied to the
/// account in one transaction with the event's marker; `entitlements-changed` published
/// when, and only when, an account's entitlements change.
public struct StripeWebhookFunction: BuildableFunction {
    public typealias Event = HTTPEvent

    public static let declaration = FunctionDeclaration(
        name: "stripe-webhook", trigger: .http(authenticated: false, retryingSender: true),
        publishes: [Topic.entitlementsChanged], reads: Configuration.settings,
        // Which Stripe price is which tier: the platform team's Terraform variable.
        settings: ["TOLLGATE_PRICE_TIERS": "{price_tiers}"],
        // Stripe calls from the internet; it waits 10 s at most, then retries.
        service: .init(memory: "128Mi", concurrency: 80, maxInstances: 20, timeoutSeconds: 10, ingress: .all),
        webhookSignature: .stripe(secret: "STRIPE_WEBHOOK_SECRET"))

    let verifier: StripeSignatureVerifier
    let applier: StripeEventApplier

    public init(configuration: Configuration, store: any DocumentStore, publisher: any Publisher) {
        verifier = StripeSignatureVerifier(secrets: configuration.webhookSecrets, tolerance: configuration.tolerance)
        applier = StripeEventApplier(
            store: store, publisher: publisher, policy: configuration.policy, references: configuration.checkoutReferences)
    }

    /// From `STRIPE_WEBHOOK_SECRET`, `TOLLGATE_CHECKOUT_SECRET`, `TOLLGATE_PRICE_TIERS`, `STRIPE_WEBHOOK_TOLERANCE`.
    public static func make(_ setup: FunctionSetup) throws -> Self {
        Self(configuration: try Configuration(environment: setup.environment), store: setup.ports.store, publisher: setup.ports.publisher)
    }

    public func handle(_ event: HTTPEvent, context: FunctionContext) async throws -> FunctionResponse {
        let request = event.request
        guard request.method == "POST" else { return .methodNotAllowed(allow: ["POST"], "Stripe posts events") }
        // Nothing is read from an unverified body: the signature comes first.
        do {
            try verifier.verify(header: request.header("Stripe-Signature"), body: request.body, now: context.clock.now())
        } catch {
            context.count("webhook_signatures_refused", [("reason", error.rawValue)])
            return .rejected(400, code: "SIGNATURE_INVALID", error.rawValue)
        }
        let stripeEvent = try StripeEvent(json: request.body)
        let outcome = try await applier.apply(stripeEvent, logger: context.logger)
        context.count("webhook_events", [("type", stripeEvent.type), ("outcome", outcome.rawValue)])
        return .json(
            200,
            .object([
                "received": .bool(true), "id": .string(stripeEvent.id), "type": .string(stripeEvent.type),
                "outcome": .string(outcome.rawValue),
            ]))
    }
}

extension StripeWebhookFunction {
    /// The function's settings, from the environment.
    public struct Configuration: Sendable {
        /// `STRIPE_WEBHOOK_SECRET`: one `whsec_` secret, or two separated by a comma while rolling.
        public var webhookSecrets: [String]
        /// `TOLLGATE_PRICE_TIERS`: which Stripe price is which tier.
        public var policy: BillingPolicy
        /// `STRIPE_WEBHOOK_TOLERANCE`: seconds either side of now a signature may be dated (300).
        public var tolerance: Int64
        /// `TOLLGATE_CHECKOUT_SECRET`: verifies the Checkout references account-api mints.
        public var checkoutReferences: CheckoutReferenceSigner

        public init(
            webhookSecrets: [String], policy: BillingPolicy, checkoutReferences: CheckoutReferenceSigner,
            tolerance: Int64 = StripeSignatureVerifier.defaultTolerance
        ) {
            self.webhookSecrets = webhookSecrets
            self.policy = policy
            self.checkoutReferences = checkoutReferences
            self.tolerance = tolerance
        }

        public static let webhookSecret = Setting.required(
            "STRIPE_WEBHOOK_SECRET", .list, secret: true,
            summary: "the webhook endpoint's signing secret (`whsec_…`); two separated by a comma while rolling it")
        public static let priceTiers = Setting.required(
            "TOLLGATE_PRICE_TIERS", .list, summary: "which Stripe price is which tier: `price_A=pro,price_B=enterprise`")
        public static let webhookTolerance = Setting(
            "STRIPE_WEBHOOK_TOLERANCE", .integer(1...3_600), default: "300",
            summary: "seconds either side of now a Stripe signature may be dated")
        public static let settings = [webhookSecret, priceTiers, webhookTolerance, AuthSettings.checkoutSecret]

        public init(environment: Environment) throws {
            let secrets = environment.list(Self.webhookSecret)
            guard !secrets.isEmpty else { throw ConfigurationError(Self.webhookSecret.name, "is not set") }
            guard secrets.count <= 2, secrets.allSatisfy({ $0.hasPrefix("whsec_") && $0.count > 10 }) else {
                // Never echo the value: it is a secret.
                throw ConfigurationError(Self.webhookSecret.name, "must be one or two whsec_ secrets separated by a comma")
            }
            let tiers = try environment.required(Self.priceTiers)
            do {
                policy = try BillingPolicy(priceTiersSetting: tiers)
            } catch {
                throw ConfigurationError(Self.priceTiers.name, "has a malformed item '\(error.item)' (want price_ID=free|pro|enterprise)")
            }
            webhookSecrets = secrets
            checkoutReferences = try CheckoutReferenceSigner(environment: environment)
            tolerance = Int64(try environment.integer(Self.webhookTolerance))
        }
    }
}
