import TollgateAuth
import TollgateModel

/// Who is calling: an API key's account, or a Clerk session's user and account (the
/// organization's, with the member's role, when the session has one active).
package struct Principal: Sendable, Hashable {
    package var accountId: String
    package var keyId: String?
    package var userId: String?
    package var organization: ClerkSessionVerifier.ActiveOrganization?
}

/// Turns a credential into a principal, with key records and user mappings cached.
struct CredentialResolver: Sendable {
    let keys: APIKeys
    let clerk: ClerkSessionVerifier?
    let store: any DocumentStore
    let keyRecords: MetadataCache<APIKeyRecord?>
    /// The records sessions are resolved from, cached.
    let sessionRecords: SessionRecords
    /// Sessions' accounts, through ``sessionRecords``.
    var sessions: SessionAccounts { sessionRecords.sessions }

    /// The user, organization and membership records sessions are resolved from, each
    /// cached for the TTL; a user's are evicted when clerk-webhook says they changed.
    struct SessionRecords: Sendable {
        let users: MetadataCache<UserRecord?>
        let organizations: MetadataCache<OrganizationRecord?>
        let memberships: MetadataCache<MembershipRecord?>
        let sessions: SessionAccounts

        init(store: any DocumentStore, ttlSeconds: Int64, clock: any TollgateModel.Clock) {
            let reading = SessionAccounts.Lookups.reading(store)
            let users = MetadataCache<UserRecord?>(ttlSeconds: ttlSeconds, clock: clock, isMiss: { $0 == nil })
            let organizations = MetadataCache<OrganizationRecord?>(ttlSeconds: ttlSeconds, clock: clock, isMiss: { $0 == nil })
            let memberships = MetadataCache<MembershipRecord?>(ttlSeconds: ttlSeconds, clock: clock, isMiss: { $0 == nil })
            self.users = users
            self.organizations = organizations
            self.memberships = memberships
            sessions = SessionAccounts(
                lookups: .init(
                    user: { id in try await users.value(id) { try await reading.user(id) } },
                    organization: { id in try await organizations.value(id) { try await reading.organization(id) } },
                    membership: { organization, user in
                        try await memberships.value(organization + "/" + user) { try await reading.membership(organization, user) }
                    }))
        }

        /// Forgets the user's record and, when named, their membership of `organizationId`.
        func evict(userId: String, organizationId: String?) {
            users.remove(userId)
            if let organizationId { memberships.remove(organizationId + "/" + userId) }
        }
    }

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
            switch try await sessions.resolve(session) {
            case .refused(let reason): return .refused(.refused(.notFound, reason, now: now))
            case .actor(let actor):
                return .principal(Principal(accountId: actor.accountId, userId: actor.userId, organization: actor.organization))
            }
        }
    }
}
