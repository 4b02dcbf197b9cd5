import Foundation
import TollgateAuth
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateRuntime

/// `account-api`: the customer's own dashboard calls it with the user's Clerk session
/// token and acts on the session's account (the active organization's, else the user's):
/// the account, its keys, its usage. In an organization every member reads and
/// `org:admin` manages keys. See README.md for the routes and their answers.
public struct AccountAPIFunction: BuildableFunction {
    public typealias Event = HTTPEvent

    public static let declaration = FunctionDeclaration(
        name: "account-api", trigger: .http(authenticated: false, retryingSender: false),
        publishes: [Topic.entitlementsChanged], blobs: .read, signsLinks: true, reads: Configuration.settings,
        // Clerk and the dashboard: the platform team's Terraform variables.
        settings: [
            "TOLLGATE_EXPORT_PREFIX": "usage/", "TOLLGATE_CLERK_ISSUER": "{clerk_issuer}",
            "TOLLGATE_CLERK_AUTHORIZED_PARTIES": "{dashboard_origins}", "TOLLGATE_DASHBOARD_ORIGINS": "{dashboard_origins}",
        ],
        // Behind the product's gateway (load balancer), called by people: small and quick.
        service: .init(
            memory: "256Mi", concurrency: 80, maxInstances: 10, timeoutSeconds: 10, ingress: .internalAndLoadBalancer,
            loadBalancer: .host))

    /// Every route's path (as the OpenAPI document writes it) and methods.
    public static var routes: [(path: String, methods: [String])] { Route.table }

    let clerk: ClerkSessionVerifier
    let sessions: SessionAccounts
    let routes: AccountRoutes
    let cors: CORSPolicy

    public init(
        configuration: Configuration, store: any DocumentStore, publisher: any Publisher, blobs: any BlobStore,
        entropy: any Entropy = SystemEntropy()
    ) {
        clerk = configuration.clerk
        sessions = SessionAccounts(lookups: .reading(store))
        routes = AccountRoutes(
            store: store, publisher: publisher, blobs: blobs, keys: configuration.keys, keyMode: configuration.keyMode,
            period: configuration.quotaPeriod, exports: configuration.exports, checkoutReferences: configuration.checkoutReferences,
            entropy: entropy)
        cors = CORSPolicy(origins: configuration.dashboardOrigins)
    }

    /// From its declared settings (`Configuration.settings`).
    public static func make(_ setup: FunctionSetup) throws -> Self {
        Self(
            configuration: try Configuration(environment: setup.environment, clock: setup.ports.clock), store: setup.ports.store,
            publisher: setup.ports.publisher, blobs: setup.ports.blobs, entropy: setup.ports.entropy)
    }

    /// Sessions from any origin while no authorized parties are set.
    public static func startupWarnings(_ environment: Environment) -> [String] { ClerkSessionVerifier.startupWarnings(environment) }

    public func handle(_ event: HTTPEvent, context: FunctionContext) async throws -> FunctionResponse {
        let request = event.request
        let origin = request.header("Origin")
        if request.method == "OPTIONS" {
            return cors.preflight(origin: origin, requestedMethod: request.header("Access-Control-Request-Method"))
        }
        let response: FunctionResponse
        do {
            response = try await answer(request, context: context)
        } catch let error as APIError {
            response = error.response
        }
        return cors.decorate(response, origin: origin)
    }

    private func answer(_ request: FunctionRequest, context: FunctionContext) async throws -> FunctionResponse {
        let route = try Route(method: request.method, path: request.path, query: request.query)
        if route == .signingKeys { return try await routes.signingKeys() }
        guard let authorization = request.header("Authorization"), authorization.count > 7,
            authorization.prefix(7).lowercased() == "bearer "
        else {
            throw APIError(401, "UNAUTHENTICATED", "send the Clerk session token as Authorization: Bearer")
        }
        let session: ClerkSessionVerifier.Session
        do {
            session = try await clerk.verify(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } catch let error as TollgateError where error.code == .unauthenticated {
            throw APIError(401, "UNAUTHENTICATED", error.message)
        }
        let actor: SessionAccounts.Actor
        switch try await sessions.resolve(session) {
        case .refused(let reason): throw APIError(403, "NO_ACCOUNT", reason)
        case .actor(let found): actor = found
        }
        let now = context.clock.now()
        switch route {
        case .account: return try await routes.account(actor, now: now)
        case .listKeys: return try await routes.keys(actor, now: now)
        case .createKey: return try await routes.createKey(actor, body: request.body, now: now, logger: context.logger)
        case .revokeKey(let prefix): return try await routes.revokeKey(prefix, actor: actor, now: now, logger: context.logger)
        case .usage(let query): return try await routes.usage(actor, query: query, now: now)
        case .export(let day): return try await routes.export(day, actor: actor, now: now)
        case .checkoutReference: return try await routes.checkoutReference(actor, now: now, logger: context.logger)
        case .signingKeys: return try await routes.signingKeys()
        }
    }
}

extension AccountAPIFunction {
    public struct Configuration: Sendable {
        public var keys: APIKeys
        public var clerk: ClerkSessionVerifier
        /// `TOLLGATE_DASHBOARD_ORIGINS`: the origins browsers may call from (CORS); none by default.
        public var dashboardOrigins: Set<String>
        /// `TOLLGATE_KEY_MODE`: `live` (default) or `test` keys.
        public var keyMode: APIKeys.Mode
        public var quotaPeriod: QuotaPeriod
        /// `TOLLGATE_EXPORT_PREFIX`: where usage-export writes (default `usage/`).
        public var exports: ExportLayout
        /// `TOLLGATE_CHECKOUT_SECRET`: mints the Checkout references stripe-webhook verifies.
        public var checkoutReferences: CheckoutReferenceSigner

        public init(
            keys: APIKeys, clerk: ClerkSessionVerifier, checkoutReferences: CheckoutReferenceSigner, dashboardOrigins: Set<String> = [],
            keyMode: APIKeys.Mode = .live, quotaPeriod: QuotaPeriod = .month, exports: ExportLayout = ExportLayout()
        ) {
            self.exports = exports
            self.checkoutReferences = checkoutReferences
            self.keys = keys
            self.clerk = clerk
            self.dashboardOrigins = dashboardOrigins
            self.keyMode = keyMode
            self.quotaPeriod = quotaPeriod
        }

        public static let dashboardOriginsSetting = Setting(
            "TOLLGATE_DASHBOARD_ORIGINS", .list, whenUnset: "none",
            summary: "browser origins allowed to call account-api (CORS): `https://app.example.com`")
        public static let keyModeSetting = Setting(
            "TOLLGATE_KEY_MODE", .text(choices: ["live", "test"]), default: "live",
            summary: "the keys account-api makes: `tg_live_…` or `tg_test_…`")
        public static let settings =
            [
                AuthSettings.keyPepper, AuthSettings.checkoutSecret, dashboardOriginsSetting, keyModeSetting,
                RuntimeConfiguration.Settings.quotaPeriod, ExportLayout.prefixSetting,
            ] + AuthSettings.clerk

        public init(environment: Environment, clock: any TollgateModel.Clock) throws {
            keys = try APIKeys(environment: environment)
            checkoutReferences = try CheckoutReferenceSigner(environment: environment)
            guard let clerk = try ClerkSessionVerifier(environment: environment, clock: clock) else {
                throw ConfigurationError(AuthSettings.clerkIssuer.name, "is not set: account-api authenticates Clerk sessions")
            }
            self.clerk = clerk
            dashboardOrigins = Set(environment.list(Self.dashboardOriginsSetting))
            for origin in dashboardOrigins
            where URL(string: origin)?.scheme.map({ ["https", "http"].contains($0) }) != true || origin.hasSuffix("/") {
                throw ConfigurationError(Self.dashboardOriginsSetting.name, "has '\(origin)': want origins such as https://app.example.com")
            }
            guard let mode = APIKeys.Mode(rawValue: try environment.required(Self.keyModeSetting)) else {
                throw ConfigurationError(Self.keyModeSetting.name, "must be live or test")
            }
            keyMode = mode
            quotaPeriod = try QuotaPeriod.fromEnvironment(environment)
            exports = try ExportLayout(environment: environment)
        }
    }
}
