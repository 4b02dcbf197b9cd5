import Foundation
import TollgateJOSE
import TollgateModel

extension Environment {
    /// This process's environment, as Cloud Run provides it.
    public init() { self.init(ProcessInfo.processInfo.environment) }
}

/// The runtime's own settings.
public struct RuntimeConfiguration: Sendable {
    /// `PORT`, 8080 when unset, as Cloud Run sets it.
    public var port: Int
    /// `K_SERVICE`, the service name; the function's own name when unset.
    public var service: String
    public var revision: String?
    /// `GOOGLE_CLOUD_PROJECT`, for trace ids in logs.
    public var project: String?
    /// `TOLLGATE_MAX_BODY_BYTES`, default 1 MiB; larger bodies get 413.
    public var maxBodyBytes: Int
    /// `TOLLGATE_REQUEST_DEADLINE_MS`: what one request's outbound calls may take together
    /// (``Deadline``); default the declaration's.
    public var deadline: Duration
    /// `TOLLGATE_LOG_LEVEL`, default `info`.
    public var logLevel: String
    /// `TOLLGATE_METRICS_PORT`: where `GET /metrics` is served, on 127.0.0.1 only (the
    /// Managed Prometheus sidecar shares the instance's loopback). Unset: not served. The
    /// public port never serves metrics: event types and refusal reasons are nobody's
    /// business outside the instance.
    public var metricsPort: Int?
    /// OIDC for internal triggers: `TOLLGATE_AUDIENCE` (the service URL), the
    /// `TOLLGATE_INVOKERS` allowed to call, and where keys come from.
    public var oidcAudience: String?
    public var oidcInvokers: [String]
    public var oidcIssuers: [String]
    public var oidcJWKS: URL

    public init(environment: Environment, function: FunctionDeclaration) throws {
        typealias Read = RuntimeConfiguration.Settings
        port = try environment.integer(Read.port)
        service = try environment.text(Read.service) ?? function.name
        revision = try environment.text(Read.revision)
        project = try environment.text(Read.project)
        maxBodyBytes = try environment.integer(Read.maxBodyBytes)
        let deadlineMilliseconds = try environment.integer(Read.requestDeadline, default: function.service.requestDeadlineMilliseconds)
        guard deadlineMilliseconds <= function.service.timeoutSeconds * 1_000 else {
            throw ConfigurationError(
                Read.requestDeadline.name,
                "must be at most the request timeout, \(function.service.timeoutSeconds * 1_000), not \(deadlineMilliseconds)")
        }
        deadline = .milliseconds(deadlineMilliseconds)
        logLevel = try environment.required(Read.logLevel)
        metricsPort = try environment.optionalInteger(Read.metricsPort)
        if let metricsPort, metricsPort != 0, metricsPort == port {
            throw ConfigurationError(Read.metricsPort.name, "must differ from PORT")
        }
        oidcAudience = try environment.text(Read.audience)
        oidcInvokers = environment.list(Read.invokers)
        oidcIssuers = environment.list(Read.oidcIssuers)
        let jwks = try environment.required(Read.oidcJWKS)
        guard let url = URL(string: jwks), ["https", "http", "file"].contains(url.scheme ?? "") else {
            throw ConfigurationError(Read.oidcJWKS.name, "must be an https, http or file URL")
        }
        oidcJWKS = url
        if function.trigger.requiresOIDC {
            guard oidcAudience != nil else {
                throw ConfigurationError(Settings.audience.name, "is not set (the service's URL, the OIDC audience)")
            }
            guard !oidcInvokers.isEmpty else {
                throw ConfigurationError(Settings.invokers.name, "is not set (the service accounts allowed to call \(function.name))")
            }
        }
    }
}

extension RuntimeConfiguration {
    /// The settings every function reads, the runtime's own.
    public enum Settings {
        public static let port = Setting(
            "PORT", .integer(0...65_535), default: "8080",
            summary: "the port to serve on, as Cloud Run sets it (0: any free port, named by the `listening` log line)")
        public static let service = Setting(
            "K_SERVICE", whenUnset: "the function's name", summary: "the service's name, as Cloud Run sets it: in every log line and metric"
        )
        public static let revision = Setting(
            "K_REVISION", whenUnset: "none", summary: "the revision, as Cloud Run sets it: in every log line")
        public static let project = Setting(
            "GOOGLE_CLOUD_PROJECT", whenUnset: "no trace ids", summary: "the project, for the trace ids of log lines")
        public static let maxBodyBytes = Setting(
            "TOLLGATE_MAX_BODY_BYTES", .integer(1_024...33_554_432), default: "1048576", summary: "larger request bodies are answered 413")
        public static let requestDeadline = Setting(
            "TOLLGATE_REQUEST_DEADLINE_MS", .integer(100...3_600_000),
            whenUnset: "the function's own: auth-validator 1.5 s, others the Cloud Run timeout less 2 s",
            summary:
                "what one request's outbound calls may take together, at most the request timeout; past it a call fails `DEADLINE_EXCEEDED` and the request is answered 503 ([runtime.md](runtime.md))"
        )
        public static let logLevel = Setting(
            "TOLLGATE_LOG_LEVEL", .text(choices: ["trace", "debug", "info", "notice", "warning", "error", "critical"]), default: "info",
            summary: "the swift-log level")
        public static let metricsPort = Setting(
            "TOLLGATE_METRICS_PORT", .integer(0...65_535), whenUnset: "not served; Terraform sets 9091",
            summary: "where `GET /metrics` is served, on 127.0.0.1 only (0: any free port); the public port never serves it")
        public static let audience = Setting(
            "TOLLGATE_AUDIENCE", whenUnset: "required by Pub/Sub, Cloud Tasks and Scheduler functions",
            summary: "for internal triggers: the service's URL, the audience of its callers' OIDC tokens")
        public static let invokers = Setting(
            "TOLLGATE_INVOKERS", .list, whenUnset: "required by Pub/Sub, Cloud Tasks and Scheduler functions",
            summary: "for internal triggers: the service accounts allowed to call")
        public static let oidcIssuers = Setting(
            "TOLLGATE_OIDC_ISSUERS", .list, default: OIDCVerifier.googleIssuers.sorted().joined(separator: ","),
            summary: "who may sign callers' OIDC tokens")
        public static let oidcJWKS = Setting(
            "TOLLGATE_OIDC_JWKS", default: OIDCVerifier.googleJWKS.absoluteString,
            summary: "where the OIDC signers' keys are (https, http or file URL)")
        public static let quotaPeriod = Setting(
            "TOLLGATE_QUOTA_PERIOD", .text(choices: QuotaPeriod.allCases.map(\.rawValue)), default: QuotaPeriod.month.rawValue,
            summary: "the quota window: a calendar month, a UTC day, or the account's Stripe billing period")

        public static let all = [
            port, service, revision, project, maxBodyBytes, requestDeadline, logLevel, metricsPort, audience, invokers, oidcIssuers,
            oidcJWKS,
        ]
    }
}

extension QuotaPeriod {
    /// `TOLLGATE_QUOTA_PERIOD`: month (default), day or billing-period.
    public static func fromEnvironment(_ environment: Environment) throws -> QuotaPeriod {
        guard let period = QuotaPeriod(rawValue: try environment.required(RuntimeConfiguration.Settings.quotaPeriod)) else {
            throw ConfigurationError(RuntimeConfiguration.Settings.quotaPeriod.name, "must be month, day or billing-period")
        }
        return period
    }
}
