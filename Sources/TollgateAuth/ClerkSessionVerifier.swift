import Foundation
import TollgateJOSE
import TollgateModel

/// Verifies Clerk session tokens: RS256/384/512 only, signature before any claim,
/// `exp`/`nbf`/`iat` with a 5-second skew, `iss` equal to the Clerk frontend API URL
/// (Clerk's SDK does not check it; we do), `azp` among the authorised parties when they
/// are configured.
/// <https://clerk.com/docs/backend-requests/manual-jwt>
public struct ClerkSessionVerifier: Sendable {
    public static let algorithms: Set<String> = ["RS256", "RS384", "RS512"]

    public struct Session: Sendable, Hashable {
        public var userId: String
        public var sessionId: String?
        public var authorizedParty: String?
        public var expires: Int64
        /// The session's active organization, when one is active.
        public var organization: ActiveOrganization?
    }

    /// The organization a session acts for, as the token says: v1 tokens carry `org_id` and
    /// `org_role` (`org:admin`); v2 tokens (`v: 2`) carry `o: {id, rol}`, the role without
    /// its `org:` prefix, which is put back so both read the same.
    /// <https://clerk.com/docs/backend-requests/resources/session-tokens>
    public struct ActiveOrganization: Sendable, Hashable {
        public var id: String
        public var role: String

        public init(id: String, role: String) {
            self.id = id
            self.role = role
        }

        /// - Throws: `UNAUTHENTICATED` for an organization claim that is not Clerk's shape.
        static func read(from claims: JSONValue) throws -> ActiveOrganization? {
            let id: String?
            let role: String?
            if let compact = claims["o"] {
                id = compact["id"]?.stringValue
                role = compact["rol"]?.stringValue.map { $0.hasPrefix("org:") ? $0 : "org:" + $0 }
            } else if let organization = claims["org_id"] {
                id = organization.stringValue
                role = claims["org_role"]?.stringValue
            } else {
                return nil
            }
            guard let id, InputBounds.isIdentifier(id), let role, (5...128).contains(role.utf8.count) else {
                throw TollgateError(.unauthenticated, "token names an organization without a usable id and role")
            }
            return ActiveOrganization(id: id, role: role)
        }
    }

    let issuer: String
    let authorizedParties: Set<String>
    let keys: any JWKSource
    let clock: any TollgateModel.Clock
    let skew: Int64

    public init(issuer: String, authorizedParties: Set<String>, keys: any JWKSource, clock: any TollgateModel.Clock, skew: Int64 = 5) {
        self.issuer = issuer
        self.authorizedParties = authorizedParties
        self.keys = keys
        self.clock = clock
        self.skew = skew
    }

    /// - Throws: `UNAUTHENTICATED` naming the first check that failed.
    public func verify(_ token: String) async throws -> Session {
        let jwt = try JWT(token)
        guard let algorithm = jwt.algorithm, Self.algorithms.contains(algorithm) else {
            throw TollgateError(.unauthenticated, "token algorithm \(jwt.algorithm ?? "missing") is not allowed")
        }
        try jwt.verifySignature(with: try await keys.key(id: jwt.keyID), allowed: Self.algorithms)
        try jwt.verifyTimes(now: clock.now(), skew: skew)
        guard jwt.claims["iss"]?.stringValue == issuer else {
            throw TollgateError(.unauthenticated, "token issuer is not the Clerk instance")
        }
        let azp = jwt.claims["azp"]?.stringValue
        if !authorizedParties.isEmpty {
            guard let azp, authorizedParties.contains(azp) else {
                throw TollgateError(.unauthenticated, "token authorised party is not allowed")
            }
        }
        guard let sub = jwt.claims["sub"]?.stringValue, !sub.isEmpty else { throw TollgateError(.unauthenticated, "token has no sub") }
        return Session(
            userId: sub, sessionId: jwt.claims["sid"]?.stringValue, authorizedParty: azp, expires: jwt.claims["exp"]?.integerValue ?? 0,
            organization: try ActiveOrganization.read(from: jwt.claims))
    }
}
