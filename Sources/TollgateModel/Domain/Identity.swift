/// Who an account belongs to: a Clerk user (personal account) or organization (team).
public struct AccountOwner: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable {
        case user, organization
    }
    public var kind: Kind
    /// The Clerk id: `user_…` or `org_…`.
    public var id: String

    public init(kind: Kind, id: String) {
        self.kind = kind
        self.id = id
    }
}

/// Which Clerk event last changed a record. Svix redelivers for days and keeps no order,
/// so an event older than the stamp leaves the record alone. Ties (Clerk's timestamps are
/// milliseconds) are broken the same way in every order: a deletion wins, then the larger
/// Svix message id.
public struct ClerkEventStamp: Codable, Sendable, Hashable, Comparable {
    /// The event's `timestamp`, in milliseconds since the epoch.
    public var timestamp: Int64
    public var deletion: Bool
    /// The `svix-id` the event was delivered as (the same on every retry).
    public var messageId: String

    public init(timestamp: Int64, deletion: Bool, messageId: String) {
        self.timestamp = timestamp
        self.deletion = deletion
        self.messageId = messageId
    }

    public static func < (lhs: ClerkEventStamp, rhs: ClerkEventStamp) -> Bool {
        if lhs.timestamp != rhs.timestamp { return lhs.timestamp < rhs.timestamp }
        if lhs.deletion != rhs.deletion { return rhs.deletion }
        return lhs.messageId < rhs.messageId
    }

    /// The time of the event, as a document timestamp (the parser keeps `timestamp` within
    /// Firestore's range, so this cannot overflow).
    public var time: Timestamp { Timestamp(microsecondsSinceEpoch: timestamp * 1_000) }
}

/// A Clerk user: `users/{clerkUserId}`. Nothing personal is kept (no name, no email):
/// only which account is the user's own.
public struct UserRecord: Codable, Sendable, Hashable {
    /// The user's personal account (the user's id unless an operator linked another).
    public var accountId: String
    /// The last Clerk event applied; absent on records an operator wrote.
    public var lastEvent: ClerkEventStamp?
    /// When Clerk deleted the user. Deletion is final: Clerk never reuses an id.
    public var deleted: Timestamp?

    public init(accountId: String, lastEvent: ClerkEventStamp? = nil, deleted: Timestamp? = nil) {
        self.accountId = accountId
        self.lastEvent = lastEvent
        self.deleted = deleted
    }

    public static let collection = "users"
}

/// A Clerk organization: `organizations/{clerkOrgId}`, whose account its members share.
public struct OrganizationRecord: Codable, Sendable, Hashable {
    public var accountId: String
    public var lastEvent: ClerkEventStamp?
    /// When Clerk deleted the organization; final, as for users.
    public var deleted: Timestamp?

    public init(accountId: String, lastEvent: ClerkEventStamp? = nil, deleted: Timestamp? = nil) {
        self.accountId = accountId
        self.lastEvent = lastEvent
        self.deleted = deleted
    }

    public static let collection = "organizations"

    /// `organizations/{orgId}/memberships`.
    public static func memberships(of organizationId: String) -> String { "\(collection)/\(organizationId)/memberships" }
}

/// A user's membership of an organization: `organizations/{orgId}/memberships/{userId}`.
/// A removed member's record stays, marked `removed`, so a late redelivery of the
/// membership's creation cannot bring it back; a later re-invitation does.
public struct MembershipRecord: Codable, Sendable, Hashable {
    /// Clerk's role key: `org:admin`, `org:member`, or a custom `org:…` role.
    public var role: String
    public var lastEvent: ClerkEventStamp
    public var removed: Timestamp?

    public init(role: String, lastEvent: ClerkEventStamp, removed: Timestamp? = nil) {
        self.role = role
        self.lastEvent = lastEvent
        self.removed = removed
    }

    /// Clerk's role that manages an organization (its keys, here).
    public static let adminRole = "org:admin"
}

/// A processed Clerk event: `clerkEvents/{svixId}`, the dedupe marker written in the same
/// transaction as the event's effect, holding only what the event itself says.
public struct ClerkEventMarker: Codable, Sendable, Hashable {
    public var type: String
    /// The event's `timestamp` (milliseconds).
    public var timestamp: Int64
    /// The user, organization or `org/user` membership it concerned.
    public var subject: String

    public init(type: String, timestamp: Int64, subject: String) {
        self.type = type
        self.timestamp = timestamp
        self.subject = subject
    }

    public static let collection = "clerkEvents"
}
