import Foundation
import TollgateModel

/// Authenticates Google's calls to internal triggers (Pub/Sub push, Cloud Tasks, Cloud
/// Scheduler): a Google-signed OIDC ID token, RS256, from an accepted issuer, for this
/// service's audience, whose `email` is an allowed invoker and is verified.
/// <https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions>
public struct OIDCVerifier: Sendable {
    /// Google's two spellings of its issuer.
    public static let googleIssuers: Set<String> = ["accounts.google.com", "https://accounts.google.com"]
    public static let googleJWKS = URL(string: "https://www.googleapis.com/oauth2/v3/certs")!

    public let issuers: Set<String>
    public let audiences: Set<String>
    public let allowedEmails: Set<String>
    let keys: any JWKSource
    let clock: any TollgateModel.Clock
    /// Leeway for clock drift between Google and us.
    let skew: Int64

    public init(
        issuers: Set<String> = googleIssuers, audiences: Set<String>, allowedEmails: Set<String>, keys: any JWKSource,
        clock: any TollgateModel.Clock, skew: Int64 = 60
    ) {
        self.issuers = issuers
        self.audiences = audiences
        self.allowedEmails = allowedEmails
        self.keys = keys
        self.clock = clock
        self.skew = skew
    }

    /// Verifies the `Authorization: Bearer` header value.
    /// - Returns: the caller's email.
    /// - Throws: `UNAUTHENTICATED` (401) for a missing, malformed, badly signed, expired
    ///   or mis-addressed token; `PERMISSION_DENIED` (403) for a valid token of a caller
    ///   that is not an allowed invoker.
    public func verify(authorization: String?) async throws -> String {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            throw TollgateError(.unauthenticated, "missing bearer token")
        }
        let token = try JWT(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        let key = try await keys.key(id: token.keyID)
        try token.verifySignature(with: key, allowed: ["RS256"])
        try token.verifyTimes(now: clock.now(), skew: skew)
        guard let issuer = token.claims["iss"]?.stringValue, issuers.contains(issuer) else {
            throw TollgateError(.unauthenticated, "token issuer is not accepted")
        }
        let audience = token.claims["aud"]
        let tokenAudiences = audience?.stringValue.map { [$0] } ?? audience?.arrayValue?.compactMap(\.stringValue) ?? []
        guard tokenAudiences.contains(where: audiences.contains) else {
            throw TollgateError(.unauthenticated, "token audience is not this service")
        }
        guard let email = token.claims["email"]?.stringValue, token.claims["email_verified"]?.boolValue == true else {
            throw TollgateError(.unauthenticated, "token has no verified email")
        }
        guard allowedEmails.contains(email) else {
            throw TollgateError(.permissionDenied, "\(email) is not an allowed invoker")
        }
        return email
    }
}
