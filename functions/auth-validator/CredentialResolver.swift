import TollgateAuth
import TollgateModel

/// Who is calling: an API key's account, or a Clerk session's user and account.
struct Principal: Sendable, Hashable {
    var accountId: String
    var keyId: String?
    var userId: String?
}

/// Turns a credential into a principal, with key records and user mappings cached.
struct CredentialResolver: Sendable {
    let keys: APIKeys
    let clerk: ClerkSessionVerifier?
    let store: any DocumentStore
    let keyRecords: MetadataCache<APIKeyRecord?>
    let users: MetadataCache<String?>

    enum Credential: Sendable {
        case apiKey(String)
        case sessionToken(String)
    }

    /// `X-API-Key`, or `Authorization: Bearer` holding a key (`tg_…`) or a session token.
    static func credential(authorization: String?, apiKey: String?) -> Credential? {
        if let apiKey, !apiKey.isEmpty { return .apiKey(apiKey.trimmingCharacters(in: .whitespaces)) }
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return nil }
        let value = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        return value.hasPrefix("tg_") ? .apiKey(value) : .sessionToken(value)
    }

    enum Resolution: Sendable {
        case principal(Principal)
        case refused(Verdict)
    }

    /// - Returns: the principal, or the refusal.
    func resolve(_ credential: Credential, now: Timestamp) async throws -> Resolution {
        switch credential {
        case .apiKey(let key):
            guard APIKeys.isWellFormed(key) else { return .refused(.refused(.notFound, "not a Tollgate API key", now: now)) }
            let hash = keys.hash(key)
            let record = try await keyRecords.value(hash) {
                try await store.get(try DocumentPath(collection: APIKeyRecord.collection, id: hash))?.decode(APIKeyRecord.self)
            }
            guard let record else { return .refused(.refused(.notFound, "unknown API key", now: now)) }
            if let revoked = record.revoked, revoked <= now { return .refused(.refused(.revoked, "the key was revoked", now: now)) }
            if let expires = record.expires, expires <= now { return .refused(.refused(.expired, "the key has expired", now: now)) }
            return .principal(Principal(accountId: record.accountId, keyId: record.displayPrefix))
        case .sessionToken(let token):
            guard let clerk else { return .refused(.refused(.invalidToken, "session tokens are not configured", now: now)) }
            let session: ClerkSessionVerifier.Session
            do {
                session = try await clerk.verify(token)
            } catch let error as TollgateError where error.code == .unauthenticated {
                return .refused(.refused(.invalidToken, error.message, now: now))
            }
            let accountId = try await users.value(session.userId) {
                try await store.get(try DocumentPath(collection: UserRecord.collection, id: session.userId))?.decode(UserRecord.self)
                    .accountId
            }
            guard let accountId else { return .refused(.refused(.notFound, "the user has no account", now: now)) }
            return .principal(Principal(accountId: accountId, userId: session.userId))
        }
    }
}
