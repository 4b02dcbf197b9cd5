import TollgateModel

/// Which account a verified Clerk session acts for: its active organization's (the
/// member's role with it), else the user's personal account. auth-validator asks through
/// its caches, account-api straight from the store; the rules are these, once.
public struct SessionAccounts: Sendable {
    /// Where the records are read from.
    public struct Lookups: Sendable {
        public var user: @Sendable (_ userId: String) async throws -> UserRecord?
        public var organization: @Sendable (_ organizationId: String) async throws -> OrganizationRecord?
        public var membership: @Sendable (_ organizationId: String, _ userId: String) async throws -> MembershipRecord?

        public init(
            user: @escaping @Sendable (String) async throws -> UserRecord?,
            organization: @escaping @Sendable (String) async throws -> OrganizationRecord?,
            membership: @escaping @Sendable (String, String) async throws -> MembershipRecord?
        ) {
            self.user = user
            self.organization = organization
            self.membership = membership
        }

        /// Each record read from `store` when asked.
        public static func reading(_ store: any DocumentStore) -> Lookups {
            Lookups(
                user: { try await store.get(try DocumentPath(collection: UserRecord.collection, id: $0))?.decode(UserRecord.self) },
                organization: {
                    try await store.get(try DocumentPath(collection: OrganizationRecord.collection, id: $0))?.decode(
                        OrganizationRecord.self)
                },
                membership: { organization, user in
                    try await store.get(try DocumentPath(collection: OrganizationRecord.memberships(of: organization), id: user))?.decode(
                        MembershipRecord.self)
                })
        }
    }

    /// The account a session acts for.
    public struct Actor: Sendable, Hashable {
        public var accountId: String
        public var userId: String
        /// The active organization and the member's role, for an organization's session.
        public var organization: ClerkSessionVerifier.ActiveOrganization?

        /// Whether the actor may manage the account (its keys): the user's own account, or
        /// an organization's as `org:admin`.
        public var manages: Bool { organization.map { $0.role == MembershipRecord.adminRole } ?? true }
    }

    public enum Resolution: Sendable, Hashable {
        case actor(Actor)
        /// Why the session acts for no account.
        case refused(String)
    }

    public let lookups: Lookups
    public init(lookups: Lookups) { self.lookups = lookups }

    /// A personal session: the user's account, unless the user has none yet (the Clerk
    /// webhook has not arrived) or was deleted. An organization's session: the
    /// organization's account, unless the user or the organization was deleted or the
    /// membership removed since the token was issued. The synced records outrank the
    /// token: a membership's stored role is the role (a demoted admin's older token
    /// manages nothing); the token is Clerk's word only for a membership not yet synced.
    public func resolve(_ session: ClerkSessionVerifier.Session) async throws -> Resolution {
        if var active = session.organization {
            if try await lookups.user(session.userId)?.deleted != nil { return .refused("the user was deleted") }
            let organization = try await lookups.organization(active.id)
            if organization?.deleted != nil { return .refused("the organization was deleted") }
            if let membership = try await lookups.membership(active.id, session.userId) {
                if membership.removed != nil { return .refused("the user is no longer a member of the organization") }
                active.role = membership.role
            }
            return .actor(Actor(accountId: organization?.accountId ?? active.id, userId: session.userId, organization: active))
        }
        guard let user = try await lookups.user(session.userId) else { return .refused("the user has no account") }
        if user.deleted != nil { return .refused("the user was deleted") }
        return .actor(Actor(accountId: user.accountId, userId: session.userId))
    }
}
