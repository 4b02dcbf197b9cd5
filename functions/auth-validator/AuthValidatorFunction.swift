import Foundation
import Logging
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateQuota
import TollgateRedis
import TollgateRuntime

/// `auth-validator`: the API gateway asks, for every request, whether to let it
/// through. It validates an API key or a Clerk session token, checks the account's
/// status and the endpoint's feature, and consumes quota atomically with the check.
///
/// Request: the credential in `X-API-Key` or `Authorization: Bearer`; the cost in
/// `X-Tollgate-Cost` (default 1; 0 checks without consuming); the endpoint in the one
/// header the gateway sets (`TOLLGATE_ENDPOINT_HEADER`: `X-Original-URI` by default, as the
/// nginx recipe sends it; `X-Forwarded-Uri` behind Traefik's `forwardAuth`; `:path` behind
/// Envoy's `ext_authz`, which asks at the client's own path; see ``EndpointGate``); optionally a further feature in `X-Tollgate-Feature`, which adds to
/// the endpoint's and never replaces it. A control header sent twice is a 400. Answer: a
/// ``Verdict``.
public struct AuthValidatorFunction: BuildableFunction {
    public typealias Event = HTTPEvent

    /// Where `entitlements-changed` is pushed to drop cached entries at once.
    public static let invalidationPath = "/_tollgate/entitlements-changed"

    /// The operations docs/openapi/auth-validator.json writes: the check (the same at any
    /// method and path; written at `/` with GET and POST) and the invalidation push.
    public static let routes: [(path: String, methods: [String])] = [("/", ["GET", "POST"]), (invalidationPath, ["POST"])]

    /// `X-Tollgate-Gateway` as the nginx recipe sets it: refusals are then answered 401 or
    /// 403 only, the statuses `auth_request` understands (see ``Verdict/response(forAuthRequest:)``).
    public static let nginxAuthRequest = "nginx-auth-request"

    /// `TOLLGATE_ENDPOINT_HEADER=:path`: the endpoint is the path the validator is asked
    /// at, as Envoy's HTTP `ext_authz` forwards the client's own path.
    public static let requestPath = ":path"

    public static let declaration = FunctionDeclaration(
        name: "auth-validator", trigger: .http(authenticated: false, retryingSender: false),
        subscriptions: [.init(topic: Topic.entitlementsChanged, path: invalidationPath)], leasesQuotaInMemorystore: true,
        reads: Configuration.settings,
        // Clerk sessions as account-api reads them: the platform team's Terraform variables.
        settings: ["TOLLGATE_CLERK_ISSUER": "{clerk_issuer}", "TOLLGATE_CLERK_AUTHORIZED_PARTIES": "{dashboard_origins}"],
        // On every API request's path: many at once, a short deadline, reached by the
        // gateway through a load balancer.
        // The gateway waits 2 s (the nginx recipe): store calls give up well before.
        service: .init(
            memory: "256Mi", concurrency: 250, maxInstances: 50, timeoutSeconds: 5, ingress: .internalAndLoadBalancer,
            loadBalancer: .gatewayAsks, deadlineMilliseconds: 1_500))

    let resolver: CredentialResolver
    let quotas: QuotaBook
    /// How consuming requests are decided: strict, leases in memory (the default) or leases
    /// in Redis (`TOLLGATE_QUOTA_STORE=redis://…`, shared by all instances).
    let engine: any QuotaEngine
    let accounts: MetadataCache<Account>
    let windows: MetadataCache<QuotaWindow>
    let gate: EndpointGate
    let costs: EndpointCosts
    let endpointHeader: String
    let invalidationVerifier: OIDCVerifier?

    public init(configuration: Configuration, store: any DocumentStore, clock: any TollgateModel.Clock, invalidationVerifier: OIDCVerifier?)
    {
        let ttl = configuration.cacheTTLSeconds
        resolver = CredentialResolver(
            keys: configuration.keys, clerk: configuration.clerk, store: store,
            keyRecords: MetadataCache(ttlSeconds: ttl, clock: clock, isMiss: { $0 == nil }),
            sessionRecords: .init(store: store, ttlSeconds: ttl, clock: clock))
        quotas = QuotaBook(store: store, period: configuration.quotaPeriod, catalog: configuration.catalog)
        let combiner = QuotaCombiner(book: quotas, clock: clock)
        let instance = "\(configuration.revision ?? "local")-\(UUID().uuidString.prefix(8))"
        switch (configuration.quotaMode, configuration.quotaStore) {
        case (.strict, _): engine = combiner
        case (.lease, nil): engine = QuotaLeases(book: quotas, clock: clock, instance: instance)
        case (.lease, let address?):
            let leases = QuotaLeases(book: quotas, clock: clock, instance: instance)
            engine = RedisQuota(redis: RedisClient(address: address), book: quotas, strict: combiner, fallback: leases, clock: clock)
        }
        accounts = MetadataCache(ttlSeconds: ttl, clock: clock)
        windows = MetadataCache(ttlSeconds: ttl, clock: clock)
        gate = EndpointGate(configuration.endpointFeatures)
        costs = EndpointCosts(configuration.endpointCosts)
        endpointHeader = configuration.endpointHeader
        self.invalidationVerifier = invalidationVerifier
    }

    /// From the settings ``Configuration/init(environment:clock:)`` reads; entitlement
    /// invalidations are accepted from the service's OIDC invokers when configured.
    public static func make(_ setup: FunctionSetup) throws -> Self {
        Self(
            configuration: try Configuration(environment: setup.environment, clock: setup.ports.clock), store: setup.ports.store,
            clock: setup.ports.clock, invalidationVerifier: setup.oidcVerifier)
    }

    /// Sessions from any origin while no authorized parties are set.
    public static func startupWarnings(_ environment: Environment) -> [String] { ClerkSessionVerifier.startupWarnings(environment) }

    public func handle(_ event: HTTPEvent, context: FunctionContext) async throws -> FunctionResponse {
        let request = event.request
        if request.path == Self.invalidationPath { return try await invalidate(request, logger: context.logger) }
        // Any method: Envoy's ext_authz asks with the client's own method and path.
        let now = context.clock.now()
        let gateway = request.header(TollgateHeaders.gateway)
        // A typo in the gateway's configuration must not silently change the statuses.
        guard gateway == nil || gateway == Self.nginxAuthRequest else {
            return .rejected(400, code: "INVALID_ARGUMENT", "X-Tollgate-Gateway takes \(Self.nginxAuthRequest) only")
        }
        let authRequest = gateway == Self.nginxAuthRequest
        if let repeated = Self.repeatedControlHeader(in: request, endpointHeader: endpointHeader) {
            return .rejected(400, code: "INVALID_ARGUMENT", "\(repeated) is sent more than once")
        }
        let endpoint = endpointHeader == Self.requestPath ? request.path : request.header(endpointHeader) ?? "/"
        let endpointKeys = EndpointGate.keys(endpoint)
        let costHeader = request.header(TollgateHeaders.cost)
        // The route's price is looked up only when the gateway sent no cost of its own.
        guard let cost = costHeader == nil ? costs.cost(forKeys: endpointKeys) : Self.cost(costHeader) else {
            return .rejected(400, code: "INVALID_ARGUMENT", "X-Tollgate-Cost must be a whole number from 0 to 1000000")
        }
        // The endpoint's feature comes from the gateway's header alone; a feature named by
        // X-Tollgate-Feature can only add to it.
        var required = gate.features(forKeys: endpointKeys)
        if let named = request.header(TollgateHeaders.feature) {
            guard let feature = Feature(rawValue: named) else {
                return .rejected(400, code: "INVALID_ARGUMENT", "unknown feature \(named)")
            }
            required.insert(feature)
        }
        guard
            let credential = CredentialResolver.credential(
                authorization: request.header("Authorization"), apiKey: request.header("X-API-Key"))
        else {
            return Verdict.refused(.notFound, "no credential: send X-API-Key or Authorization: Bearer", now: now).response(
                forAuthRequest: authRequest)
        }

        let principal: Principal
        switch try await resolver.resolve(credential, now: now) {
        case .refused(let refusal): return refusal.response(forAuthRequest: authRequest)
        case .principal(let found): principal = found
        }
        var verdict = Verdict(
            code: .valid, accountId: principal.accountId, keyId: principal.keyId, userId: principal.userId,
            organizationId: principal.organization?.id, organizationRole: principal.organization?.role, now: now)
        let features = required
        let refusal: @Sendable (Account) -> Verdict.Code? = { account in
            if !account.admitsRequests { return .disabled }
            if !features.allSatisfy(account.entitlements.has) { return .forbidden }
            return nil
        }

        if cost == 0 {
            // Check only: served from the cache, never consuming.
            let account = try await accounts.value(principal.accountId) { try await quotas.account(principal.accountId) }
            let window = try await windows.value(principal.accountId) { try await quotas.window(for: account, now: now) }
            verdict.tier = account.tier
            verdict.entitlements = account.entitlements
            verdict.quota = QuotaWindow.current(window, account: account, period: quotas.period, now: now)
            if let code = refusal(account) { verdict.code = code }
            return verdict.response(forAuthRequest: authRequest)
        }

        let claim = QuotaBook.Claim(cost: cost) { refusal($0) == nil }
        let outcome = try await engine.consume(claim, accountId: principal.accountId)
        switch outcome {
        case .admitted(let account, let window), .exceeded(let account, let window):
            accounts.store(account.id, account)
            windows.store(account.id, window)
            verdict.tier = account.tier
            verdict.entitlements = account.entitlements
            verdict.quota = window
            if case .exceeded = outcome { verdict.code = .usageExceeded }
        case .refused(let account):
            accounts.store(account.id, account)
            verdict.tier = account.tier
            verdict.entitlements = account.entitlements
            verdict.code = refusal(account) ?? .forbidden
        }
        if verdict.code != .valid { context.count("quota_denials", [("code", verdict.code.rawValue)]) }
        return verdict.response(forAuthRequest: authRequest)
    }

    /// SIGTERM: the unspent units of this instance's leases go back to their windows.
    public func drained() async { await engine.returnAll() }

    /// Requests the in-memory leases decided because Redis could not (tests, metrics).
    package var redisFallbacks: Int { (engine as? RedisQuota)?.fallbacks ?? 0 }

    static func cost(_ text: String?) -> Int64? {
        guard let text else { return 1 }
        guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), InputBounds.requestCost.contains(value) else { return nil }
        return value
    }

    /// The first header that decides the verdict and is sent more than once: a gateway
    /// and a client that both set one would otherwise leave the choice to header order.
    static func repeatedControlHeader(in request: FunctionRequest, endpointHeader: String) -> String? {
        var seen: Set<String> = []
        for (name, _) in request.headers {
            // ASCII only (header names are ASCII): no Unicode case mapping on the hot path.
            let lower = String(decoding: name.utf8.map { (65...90).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
            guard lower.hasPrefix("x-tollgate-") || lower == "x-api-key" || lower == "authorization" || lower == endpointHeader.lowercased()
            else { continue }
            if !seen.insert(lower).inserted { return name }
        }
        return nil
    }

    /// An `entitlements-changed` push: drops the account's cached entries on this instance.
    /// A message it cannot read is acknowledged (and logged): redelivering it would not
    /// help, and the TTL bounds what a lost invalidation costs.
    private func invalidate(_ request: FunctionRequest, logger: Logger) async throws -> FunctionResponse {
        guard let verifier = invalidationVerifier else { return .rejected(404, code: "NOT_FOUND", "invalidation is not configured") }
        guard request.method == "POST" else { return .methodNotAllowed(allow: ["POST"], "Pub/Sub pushes with POST") }
        _ = try await verifier.verify(authorization: request.header("Authorization"))
        let accountId: String
        let revokedKey: String?
        let sessionsOf: (userId: String, organizationId: String?)?
        do {
            let message = try PubSubEvent.decode(request).message
            let data = try? JSONValue.parse(message.data)
            guard let id = data?["accountId"]?.stringValue ?? message.attributes["accountId"] else {
                throw TollgateError(.invalidArgument, "entitlements-changed message without an accountId")
            }
            accountId = id
            // account-api names a key it revoked by its keyed hash (the record's id).
            revokedKey = data?["revokedKey"]?.stringValue
            // clerk-webhook names a user deleted, or a member removed or given another role.
            sessionsOf = data?["userId"]?.stringValue.map { ($0, data?["organizationId"]?.stringValue) }
        } catch {
            logger.warning("unreadable entitlements-changed message acknowledged", metadata: ["reason": "\(error)"])
            return FunctionResponse(status: 204)
        }
        if let revokedKey { resolver.keyRecords.remove(revokedKey) }
        if let sessionsOf { resolver.sessionRecords.evict(userId: sessionsOf.userId, organizationId: sessionsOf.organizationId) }
        accounts.remove(accountId)
        windows.remove(accountId)
        await engine.invalidate(accountId)
        return FunctionResponse(status: 204)
    }
}

extension AuthValidatorFunction {
    public struct Configuration: Sendable {
        public var keys: APIKeys
        public var clerk: ClerkSessionVerifier?
        public var cacheTTLSeconds: Int64
        public var quotaPeriod: QuotaPeriod
        public var catalog: TierCatalog
        public var endpointFeatures: [(prefix: String, feature: Feature)]
        public var endpointCosts: [(prefix: String, cost: Int64)]
        /// The one header the endpoint is read from: the one the gateway sets.
        public var endpointHeader: String
        /// How consuming requests are decided: one transaction per batch (strict), or from
        /// leases of quota held in memory (docs/quota-leases.md).
        public var quotaMode: QuotaMode = .lease

        public enum QuotaMode: String, Sendable {
            case strict, lease
        }

        /// Where leases are held, besides the document store: Redis (Memorystore), shared by
        /// every instance. nil: each instance holds its own, in memory.
        public var quotaStore: RedisAddress?

        public static let defaultEndpointHeader = "X-Original-URI"
        /// The revision (`K_REVISION`) names this instance's leases.
        public var revision: String?

        public static let cacheTTLSetting = Setting(
            "TOLLGATE_CACHE_TTL", .integer(0...3_600), default: "30", summary: "seconds auth-validator caches keys, accounts and windows")
        public static let endpointFeaturesSetting = Setting(
            "TOLLGATE_ENDPOINT_FEATURES", .list, whenUnset: "none",
            summary:
                "endpoints that need a feature: `/v1/jobs=asyncJobs,/v1/diffusion=diffusionGating` (matched on whole segments after RFC 3986 normalisation, see [gateway.md](gateway.md))"
        )
        public static let endpointCostsSetting = Setting(
            "TOLLGATE_ENDPOINT_COSTS", .list, whenUnset: "1 everywhere",
            summary:
                "what a request costs by endpoint, so the gateway need not send `X-Tollgate-Cost`: `/v1/bulk=10,/v1/health=0` (longest prefix wins; a gateway's `X-Tollgate-Cost` wins over it)"
        )
        public static let endpointHeaderSetting = Setting(
            "TOLLGATE_ENDPOINT_HEADER", default: defaultEndpointHeader,
            summary:
                "the one header the endpoint is read from, the one the gateway sets (`X-Forwarded-Uri` for Traefik), or `:path` for the path asked at (Envoy)"
        )
        public static let quotaModeSetting = Setting(
            "TOLLGATE_QUOTA_MODE", .text(choices: ["lease", "strict"]), default: QuotaMode.lease.rawValue,
            summary:
                "`lease` (blocks of quota held in memory, [quota-leases.md](quota-leases.md)) or `strict` (a transaction per batch of requests)"
        )
        public static let quotaStoreSetting = Setting(
            "TOLLGATE_QUOTA_STORE", whenUnset: "leases in memory",
            summary:
                "lease mode: `redis://HOST:PORT[/DB]` holds the leases in Redis (Memorystore), shared by every instance; while it is unreachable each instance falls back to its own"
        )
        public static let settings =
            [
                AuthSettings.keyPepper, cacheTTLSetting, RuntimeConfiguration.Settings.quotaPeriod, endpointFeaturesSetting,
                endpointCostsSetting, endpointHeaderSetting, quotaModeSetting, quotaStoreSetting,
            ] + AuthSettings.clerk

        public init(
            keys: APIKeys, clerk: ClerkSessionVerifier?, cacheTTLSeconds: Int64 = 30, quotaPeriod: QuotaPeriod = .month,
            catalog: TierCatalog = .standard, endpointFeatures: [(prefix: String, feature: Feature)] = [],
            endpointCosts: [(prefix: String, cost: Int64)] = [],
            endpointHeader: String = defaultEndpointHeader
        ) {
            self.endpointHeader = endpointHeader
            self.keys = keys
            self.clerk = clerk
            self.cacheTTLSeconds = cacheTTLSeconds
            self.quotaPeriod = quotaPeriod
            self.catalog = catalog
            self.endpointFeatures = endpointFeatures
            self.endpointCosts = endpointCosts
        }

        /// From its declared settings (``settings``).
        public init(environment: Environment, clock: any TollgateModel.Clock) throws {
            keys = try APIKeys(environment: environment)
            clerk = try ClerkSessionVerifier(environment: environment, clock: clock)
            cacheTTLSeconds = Int64(try environment.integer(Self.cacheTTLSetting))
            revision = try environment.text(RuntimeConfiguration.Settings.revision)
            quotaPeriod = try QuotaPeriod.fromEnvironment(environment)
            catalog = .standard
            endpointFeatures = try environment.list(Self.endpointFeaturesSetting).map { item in
                let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, pair[0].hasPrefix("/"), let feature = Feature(rawValue: pair[1]) else {
                    throw ConfigurationError(Self.endpointFeaturesSetting.name, "has a malformed item '\(item)' (want /path=feature)")
                }
                return (pair[0], feature)
            }
            endpointCosts = try environment.list(Self.endpointCostsSetting).map { item in
                let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2, pair[0].hasPrefix("/"), let cost = Int64(pair[1]), InputBounds.requestCost.contains(cost) else {
                    throw ConfigurationError(
                        Self.endpointCostsSetting.name, "has a malformed item '\(item)' (want /path=units, units from 0 to 1000000)")
                }
                return (pair[0], cost)
            }
            let header = try environment.required(Self.endpointHeaderSetting)
            guard
                header == AuthValidatorFunction.requestPath
                    || !header.isEmpty && header.utf8.allSatisfy({ (33...126).contains($0) && $0 != UInt8(ascii: ":") })
            else {
                throw ConfigurationError(Self.endpointHeaderSetting.name, "must be a header name, or :path for the request's own path")
            }
            endpointHeader = header
            guard let quotaMode = QuotaMode(rawValue: try environment.required(Self.quotaModeSetting)) else {
                throw ConfigurationError(Self.quotaModeSetting.name, "must be strict or lease")
            }
            self.quotaMode = quotaMode
            if let store = try environment.text(Self.quotaStoreSetting) {
                do { quotaStore = try RedisAddress(url: store) } catch {
                    throw ConfigurationError(Self.quotaStoreSetting.name, error.message)
                }
                guard quotaMode == .lease else {
                    throw ConfigurationError(Self.quotaStoreSetting.name, "holds leases: it needs TOLLGATE_QUOTA_MODE=lease")
                }
            }
        }
    }
}
