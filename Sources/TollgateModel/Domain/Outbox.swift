/// A message committed with the change that caused it (`outbox/{cause}`), published after
/// the commit and then removed: a crash between the two is repaired by the sender's
/// redelivery, which finds the entry and publishes it.
public struct OutboxEntry: Codable, Sendable, Hashable {
    public static let collection = "outbox"
    public var topic: String
    public var accountId: String
    public var data: String

    public init(topic: String, accountId: String, data: String) {
        self.topic = topic
        self.accountId = accountId
        self.data = data
    }

    public var message: OutgoingMessage {
        OutgoingMessage(data: Array(data.utf8), attributes: ["accountId": accountId], orderingKey: accountId)
    }

    /// `entitlements-changed` for `account`, naming the event that caused it
    /// (`stripeEventId`, `clerkEventId`).
    /// `userId`: a deleted user whose sessions go with the account.
    public static func entitlementsChanged(_ account: Account, cause: (key: String, id: String), userId: String? = nil) throws
        -> OutboxEntry
    {
        let entitlements = try FieldValueEncoder().encodeValue(account.entitlements).plainJSON
        var body: [String: JSONValue] = [
            "accountId": .string(account.id), "tier": .string(account.tier.rawValue), "entitlements": entitlements,
            "status": account.billing.map { .string($0.status.rawValue) } ?? .null, cause.key: .string(cause.id),
        ]
        if account.closed != nil { body["closed"] = .bool(true) }
        if let userId { body["userId"] = .string(userId) }
        return OutboxEntry(topic: Topic.entitlementsChanged, accountId: account.id, data: JSONValue.object(body).rendered())
    }

    /// `entitlements-changed` telling auth-validator to forget what it cached of a user's
    /// sessions (the user record, and the membership in `organizationId` when named): a
    /// deletion, a removal or a new role takes effect at once, not when the cache expires.
    public static func sessionsChanged(
        accountId: String, userId: String, organizationId: String?, cause: (key: String, id: String)
    ) -> OutboxEntry {
        var body: [String: JSONValue] = ["accountId": .string(accountId), "userId": .string(userId), cause.key: .string(cause.id)]
        if let organizationId { body["organizationId"] = .string(organizationId) }
        return OutboxEntry(topic: Topic.entitlementsChanged, accountId: accountId, data: JSONValue.object(body).rendered())
    }
}
