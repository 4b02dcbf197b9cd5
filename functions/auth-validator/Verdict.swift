import TollgateModel
import TollgateRuntime

/// The answer to the gateway, modelled on key-verification APIs: whether to let the
/// request through, a machine-readable code, and what the caller is entitled to.
public struct Verdict: Sendable, Hashable {
    public enum Code: String, Sendable {
        case valid = "VALID"
        case notFound = "NOT_FOUND"
        case expired = "EXPIRED"
        case revoked = "REVOKED"
        /// The account's subscription no longer entitles it (unpaid: suspended).
        case disabled = "DISABLED"
        /// The tier lacks the feature the endpoint needs.
        case forbidden = "FORBIDDEN"
        case usageExceeded = "USAGE_EXCEEDED"
        case invalidToken = "INVALID_TOKEN"

        /// 200 for valid; 401 for an unusable credential; 403 for a refusal of a known
        /// caller; 429 for exhausted quota.
        public var status: Int {
            switch self {
            case .valid: 200
            case .notFound, .expired, .revoked, .invalidToken: 401
            case .disabled, .forbidden: 403
            case .usageExceeded: 429
            }
        }
    }

    public var code: Code
    public var message: String?
    public var accountId: String?
    public var keyId: String?
    public var userId: String?
    public var tier: Tier?
    public var entitlements: Entitlements?
    public var quota: QuotaWindow?
    public var now: Timestamp

    public static func refused(_ code: Code, _ message: String, now: Timestamp) -> Verdict {
        Verdict(code: code, message: message, now: now)
    }

    public var response: FunctionResponse {
        var body: [String: JSONValue] = ["valid": .bool(code == .valid), "code": .string(code.rawValue)]
        if let message { body["message"] = .string(message) }
        if let accountId { body["accountId"] = .string(accountId) }
        if let keyId { body["keyId"] = .string(keyId) }
        if let userId { body["userId"] = .string(userId) }
        if let tier { body["tier"] = .string(tier.rawValue) }
        if let entitlements { body["entitlements"] = entitlements.plainJSON }
        var headers: [String: String] = [:]
        if let quota, let entitlements {
            let limit = quota.effectiveLimit(entitlements: entitlements)
            body["quota"] = .object([
                "limit": .integer(limit), "remaining": .integer(max(0, limit - quota.used)), "reset": .string(quota.end.rfc3339),
            ])
            if code == .usageExceeded {
                headers["Retry-After"] = String(max(1, quota.end.secondsSinceEpoch - now.secondsSinceEpoch))
            }
        }
        return .json(code.status, .object(body), headers: headers)
    }
}
