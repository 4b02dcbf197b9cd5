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
    public static func entitlementsChanged(_ account: Account, cause: (key: String, id: String)) throws -> OutboxEntry {
        let entitlements = try FieldValueEncoder().encodeValue(account.entitlements).plainJSON
        var body: [String: JSONValue] = [
            "accountId": .string(account.id), "tier": .string(account.tier.rawValue), "entitlements": entitlements,
            "status": account.billing.map { .string($0.status.rawValue) } ?? .null, cause.key: .string(cause.id),
        ]
        if account.closed != nil { body["closed"] = .bool(true) }
        return OutboxEntry(topic: Topic.entitlementsChanged, accountId: account.id, data: JSONValue.object(body).rendered())
    }
}
