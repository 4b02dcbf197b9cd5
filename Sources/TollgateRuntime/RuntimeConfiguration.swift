import Foundation
import TollgateJOSE
import TollgateModel

/// A setting that is missing or malformed: start-up stops with one line naming it.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let setting: String
    public let problem: String
    public init(_ setting: String, _ problem: String) {
        self.setting = setting
        self.problem = problem
    }
    public var description: String { "configuration: \(setting) \(problem)" }
}

/// Reads settings from the environment, as Cloud Run provides them.
public struct Environment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) { self.values = values }

    public subscript(name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    public func required(_ name: String) throws -> String {
        guard let value = self[name] else { throw ConfigurationError(name, "is not set") }
        return value
    }

    public func integer(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = self[name] else { return value }
        guard let parsed = Int(text), range.contains(parsed) else {
            throw ConfigurationError(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return parsed
    }

    /// A comma-separated list, trimmed, empty items dropped.
    public func list(_ name: String) -> [String] {
        (self[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
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
        // 0 asks for any free port (local use); the "listening" log line names it.
        port = try environment.integer("PORT", default: 8080, range: 0...65_535)
        service = environment["K_SERVICE"] ?? function.name
        revision = environment["K_REVISION"]
        project = environment["GOOGLE_CLOUD_PROJECT"]
        maxBodyBytes = try environment.integer("TOLLGATE_MAX_BODY_BYTES", default: 1_048_576, range: 1_024...33_554_432)
        deadline = .milliseconds(
            try environment.integer(
                "TOLLGATE_REQUEST_DEADLINE_MS", default: function.service.requestDeadlineMilliseconds,
                range: 100...(function.service.timeoutSeconds * 1_000)))
        logLevel = environment["TOLLGATE_LOG_LEVEL"] ?? "info"
        metricsPort =
            environment["TOLLGATE_METRICS_PORT"] == nil
            ? nil : try environment.integer("TOLLGATE_METRICS_PORT", default: 0, range: 0...65_535)
        if let metricsPort, metricsPort != 0, metricsPort == port {
            throw ConfigurationError("TOLLGATE_METRICS_PORT", "must differ from PORT")
        }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigurationError("TOLLGATE_LOG_LEVEL", "must be one of trace, debug, info, notice, warning, error, critical")
        }
        oidcAudience = environment["TOLLGATE_AUDIENCE"]
        oidcInvokers = environment.list("TOLLGATE_INVOKERS")
        let issuers = environment.list("TOLLGATE_OIDC_ISSUERS")
        oidcIssuers = issuers.isEmpty ? Array(OIDCVerifier.googleIssuers).sorted() : issuers
        let jwks = environment["TOLLGATE_OIDC_JWKS"] ?? OIDCVerifier.googleJWKS.absoluteString
        guard let url = URL(string: jwks), ["https", "http", "file"].contains(url.scheme ?? "") else {
            throw ConfigurationError("TOLLGATE_OIDC_JWKS", "must be an https, http or file URL")
        }
        oidcJWKS = url
        if function.trigger.requiresOIDC {
            guard oidcAudience != nil else {
                throw ConfigurationError("TOLLGATE_AUDIENCE", "is not set (the service's URL, the OIDC audience)")
            }
            guard !oidcInvokers.isEmpty else {
                throw ConfigurationError("TOLLGATE_INVOKERS", "is not set (the service accounts allowed to call \(function.name))")
            }
        }
    }
}

extension QuotaPeriod {
    /// `TOLLGATE_QUOTA_PERIOD`: month (default), day or billing-period.
    public static func fromEnvironment(_ environment: Environment) throws -> QuotaPeriod {
        let text = environment["TOLLGATE_QUOTA_PERIOD"] ?? "month"
        guard let period = QuotaPeriod(rawValue: text) else {
            throw ConfigurationError("TOLLGATE_QUOTA_PERIOD", "must be month, day or billing-period")
        }
        return period
    }
}
