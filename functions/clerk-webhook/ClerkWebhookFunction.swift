import Foundation
import TollgateAuth
import TollgateModel
import TollgateRuntime

/// `clerk-webhook`: Clerk's webhooks, delivered by Svix, verified, deduplicated by
/// `svix-id` and applied in one transaction with their marker: every user gets a personal
/// account, every organization an account its members share, memberships carry roles,
/// and deleting a user or an organization closes its account and revokes its keys.
public struct ClerkWebhookFunction: BuildableFunction {
    public typealias Event = HTTPEvent

    public static let declaration = FunctionDeclaration(
        name: "clerk-webhook", trigger: .http(authenticated: false, retryingSender: true),
        publishes: [Topic.entitlementsChanged], reads: Configuration.settings,
        // Svix calls from the internet and waits 15 s before it counts a delivery as failed.
        service: .init(memory: "128Mi", concurrency: 80, maxInstances: 10, timeoutSeconds: 15, ingress: .all),
        webhookSignature: .svix(secret: "CLERK_WEBHOOK_SECRET"))

    let verifier: SvixSignatureVerifier
    let applier: ClerkEventApplier

    public init(configuration: Configuration, store: any DocumentStore, publisher: any Publisher) throws {
        verifier = try SvixSignatureVerifier(secrets: configuration.webhookSecrets, tolerance: configuration.tolerance)
        applier = ClerkEventApplier(store: store, publisher: publisher)
    }

    /// From `CLERK_WEBHOOK_SECRET` and `CLERK_WEBHOOK_TOLERANCE`.
    public static func make(_ setup: FunctionSetup) throws -> Self {
        try Self(
            configuration: try Configuration(environment: setup.environment), store: setup.ports.store, publisher: setup.ports.publisher)
    }

    public func handle(_ event: HTTPEvent, context: FunctionContext) async throws -> FunctionResponse {
        let request = event.request
        guard request.method == "POST" else { return .methodNotAllowed(allow: ["POST"], "Svix posts events") }
        // Nothing is read from an unverified body: the signature comes first.
        let message: SvixSignatureVerifier.Message
        do {
            message = try verifier.verify(header: request.header, body: request.body, now: context.clock.now())
        } catch {
            context.count("webhook_signatures_refused", [("reason", error.rawValue)])
            return .rejected(400, code: "SIGNATURE_INVALID", error.rawValue)
        }
        // The marker is named by the id: one Firestore can hold, whatever Svix sent.
        guard InputBounds.isIdentifier(message.id) else {
            throw TollgateError(.invalidArgument, "svix-id is not 1–128 of A–Z a–z 0–9 _ -")
        }
        let clerkEvent = try ClerkEvent(json: request.body, svixTimestamp: message.timestamp)
        let outcome = try await applier.apply(clerkEvent, messageId: message.id, logger: context.logger)
        context.count("webhook_events", [("type", clerkEvent.type), ("outcome", outcome.rawValue)])
        return .json(
            200,
            .object([
                "received": .bool(true), "id": .string(message.id), "type": .string(clerkEvent.type),
                "outcome": .string(outcome.rawValue),
            ]))
    }
}

extension ClerkWebhookFunction {
    /// The function's settings, from the environment.
    public struct Configuration: Sendable {
        /// `CLERK_WEBHOOK_SECRET`: the endpoint's `whsec_` signing secret, or two separated by
        /// a comma while rotating.
        public var webhookSecrets: [String]
        /// `CLERK_WEBHOOK_TOLERANCE`: seconds either side of now a message may be dated (300).
        public var tolerance: Int64

        public init(webhookSecrets: [String], tolerance: Int64 = SvixSignatureVerifier.defaultTolerance) {
            self.webhookSecrets = webhookSecrets
            self.tolerance = tolerance
        }

        public static let webhookSecret = Setting.required(
            "CLERK_WEBHOOK_SECRET", .list, secret: true,
            summary: "the Clerk (Svix) endpoint's signing secret (`whsec_` and base64); two separated by a comma while rotating")
        public static let webhookTolerance = Setting(
            "CLERK_WEBHOOK_TOLERANCE", .integer(1...3_600), default: "300",
            summary: "seconds either side of now a Svix message may be dated")
        public static let settings = [webhookSecret, webhookTolerance]

        public init(environment: Environment) throws {
            let secrets = environment.list(Self.webhookSecret)
            guard !secrets.isEmpty else { throw ConfigurationError(Self.webhookSecret.name, "is not set") }
            // Never echo the value: it is a secret.
            guard secrets.count <= 2, (try? SvixSignatureVerifier(secrets: secrets)) != nil else {
                throw ConfigurationError(
                    Self.webhookSecret.name, "must be one or two whsec_ secrets (base64 after the prefix) separated by a comma")
            }
            webhookSecrets = secrets
            tolerance = Int64(try environment.integer(Self.webhookTolerance))
        }
    }
}
