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
    let users: MetadataCache<UserRecord?>
    let organizations: MetadataCache<OrganizationRecord?>
    /// By `orgId/userId`.
    let memberships: MetadataCache<MembershipRecord?>

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
            if let organization = session.organization {
                return try await resolve(session, in: organization, now: now)
            }
            let user = try await users.value(session.userId) {
                try await store.get(try DocumentPath(collection: UserRecord.collection, id: session.userId))?.decode(UserRecord.self)
            }
            guard let user else { return .refused(.refused(.notFound, "the user has no account", now: now)) }
            if user.deleted != nil { return .refused(.refused(.notFound, "the user was deleted", now: now)) }
            return .principal(Principal(accountId: user.accountId, userId: session.userId))
        }
    }

    /// A session acting for its active organization: the organization's account, unless
    /// the organization was deleted or the user's membership was removed since the token was
    /// issued. The token itself is Clerk's word for the membership until the webhook says
    /// otherwise, so a membership not yet synced is trusted.
    private func resolve(_ session: ClerkSessionVerifier.Session, in active: ClerkSessionVerifier.ActiveOrganization, now: Timestamp)
        async throws -> Resolution
    {
        let organization = try await organizations.value(active.id) {
            try await store.get(try DocumentPath(collection: OrganizationRecord.collection, id: active.id))?.decode(OrganizationRecord.self)
        }
        if organization?.deleted != nil { return .refused(.refused(.notFound, "the organization was deleted", now: now)) }
        let membership = try await memberships.value(active.id + "/" + session.userId) {
            try await store.get(try DocumentPath(collection: OrganizationRecord.memberships(of: active.id), id: session.userId))?
                .decode(MembershipRecord.self)
        }
        if membership?.removed != nil {
            return .refused(.refused(.notFound, "the user is no longer a member of the organization", now: now))
        }
        return .principal(Principal(accountId: organization?.accountId ?? active.id, userId: session.userId, organization: active))
    }
}
