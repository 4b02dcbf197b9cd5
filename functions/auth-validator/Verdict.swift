import TollgateModel
import TollgateRuntime

/// Every `X-Tollgate-*` header, declared once: what the validator answers with and what it
/// reads from the gateway. A gateway recipe sets or strips each of them (GatewayRecipeFilesTests
/// holds every recipe to this list, and docs/gateway.md lists them), so the API service can
/// trust any it receives as the gateway's.
public enum TollgateHeaders {
    public static let code = "X-Tollgate-Code"
    public static let account = "X-Tollgate-Account"
    public static let key = "X-Tollgate-Key"
    public static let user = "X-Tollgate-User"
    public static let organization = "X-Tollgate-Organization"
    public static let role = "X-Tollgate-Role"
    public static let tier = "X-Tollgate-Tier"
    public static let cost = "X-Tollgate-Cost"
    public static let feature = "X-Tollgate-Feature"
    public static let endpoint = "X-Tollgate-Endpoint"
    public static let gateway = "X-Tollgate-Gateway"

    /// Who the caller is: forwarded to the API service when the verdict admits.
    public static let identity = [account, key, user, organization, role, tier]
    /// What the gateway tells the validator (`X-Tollgate-Endpoint` is never read: the
    /// endpoint header is configured, and a client's copy must still go).
    public static let fromGateway = [cost, feature, endpoint, gateway]
    /// Every one of them: a client's copy never reaches the validator or the API service.
    public static let all = [code] + identity + fromGateway
}

/// The answer to the gateway, modelled on key-verification APIs: whether to let the
/// request through, a machine-readable code, and what the caller is entitled to.
public struct Verdict: Sendable, Hashable {
    public enum Code: String, Sendable, CaseIterable {
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
    /// The session's active organization and the member's role in it (`org:admin`).
    public var organizationId: String?
    public var organizationRole: String?
    public var tier: Tier?
    public var entitlements: Entitlements?
    public var quota: QuotaWindow?
    public var now: Timestamp

    public static func refused(_ code: Code, _ message: String, now: Timestamp) -> Verdict {
        Verdict(code: code, message: message, now: now)
    }

    /// The verdict as JSON, and as headers a gateway can forward upstream or copy to the
    /// client (gateways forward headers, not bodies): `X-Tollgate-Code`, and for a known
    /// caller `X-Tollgate-Account`, `X-Tollgate-Key` (the key's display prefix, never the
    /// key), `X-Tollgate-User`, `X-Tollgate-Organization` and `X-Tollgate-Role` (a session
    /// acting for an organization), `X-Tollgate-Tier`; the quota as `RateLimit-Policy` and
    /// `RateLimit` (draft-ietf-httpapi-ratelimit-headers), and `Retry-After` on 429.
    public var response: FunctionResponse { response(forAuthRequest: false) }

    /// - Parameter forAuthRequest: answer as nginx's `auth_request` understands: it takes
    ///   2xx, 401 and 403 and makes anything else a 500, so a refusal with another status
    ///   (429) is answered 403; `X-Tollgate-Code` still says which it was.
    public func response(forAuthRequest: Bool) -> FunctionResponse {
        var body: [String: JSONValue] = ["valid": .bool(code == .valid), "code": .string(code.rawValue)]
        var headers: [String: String] = [TollgateHeaders.code: code.rawValue]
        if let message { body["message"] = .string(message) }
        if let accountId {
            body["accountId"] = .string(accountId)
            headers[TollgateHeaders.account] = Self.headerValue(accountId)
        }
        if let keyId {
            body["keyId"] = .string(keyId)
            headers[TollgateHeaders.key] = Self.headerValue(keyId)
        }
        if let userId {
            body["userId"] = .string(userId)
            headers[TollgateHeaders.user] = Self.headerValue(userId)
        }
        if let organizationId, let organizationRole {
            body["organizationId"] = .string(organizationId)
            body["organizationRole"] = .string(organizationRole)
            headers[TollgateHeaders.organization] = Self.headerValue(organizationId)
            headers[TollgateHeaders.role] = Self.headerValue(organizationRole)
        }
        if let tier {
            body["tier"] = .string(tier.rawValue)
            headers[TollgateHeaders.tier] = tier.rawValue
        }
        if let entitlements { body["entitlements"] = entitlements.plainJSON }
        if let quota, let entitlements {
            let limit = quota.effectiveLimit(entitlements: entitlements)
            let remaining = max(0, limit - quota.used)
            let resetSeconds = max(0, quota.end.secondsSinceEpoch - now.secondsSinceEpoch)
            body["quota"] = .object([
                "limit": .integer(limit), "remaining": .integer(remaining), "reset": .string(quota.end.rfc3339),
            ])
            let window = max(1, quota.end.secondsSinceEpoch - quota.start.secondsSinceEpoch)
            headers["RateLimit-Policy"] = "\"\(Self.policyName)\";q=\(limit);w=\(window)"
            headers["RateLimit"] = "\"\(Self.policyName)\";r=\(remaining);t=\(resetSeconds)"
            if code == .usageExceeded { headers["Retry-After"] = String(max(1, resetSeconds)) }
        }
        let status = forAuthRequest && ![200, 401, 403].contains(code.status) ? 403 : code.status
        return .json(status, .object(body), headers: headers)
    }

    /// The quota policy's identifier in `RateLimit-Policy` and `RateLimit`.
    public static let policyName = "quota"

    /// A value fit for a header as it is (visible ASCII, at most 256 bytes), else nil: ids
    /// are bounded at decode, but a header must never carry a control character.
    static func headerValue(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.count <= 256, text.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return text
    }
}
