import Foundation

/// An API key as stored: `apiKeys/{hash}`. The plaintext key is never stored; the
/// document id is the keyed hash (HMAC-SHA256 with the pepper) of the key.
public struct APIKeyRecord: Codable, Sendable, Hashable {
    public var accountId: String
    /// The first characters of the key (`tg_live_AbCd`), to recognise it in lists.
    public var displayPrefix: String
    public var name: String?
    public var created: Timestamp
    public var expires: Timestamp?
    public var revoked: Timestamp?

    public init(accountId: String, displayPrefix: String, name: String?, created: Timestamp, expires: Timestamp?, revoked: Timestamp?) {
        self.accountId = accountId
        self.displayPrefix = displayPrefix
        self.name = name
        self.created = created
        self.expires = expires
        self.revoked = revoked
    }

    public static let collection = "apiKeys"
}

/// An account's current quota window: `quotas/{accountId}`.
public struct QuotaWindow: Codable, Sendable, Hashable {
    public var start: Timestamp
    public var end: Timestamp
    public var limit: Int64
    public var used: Int64

    public init(start: Timestamp, end: Timestamp, limit: Int64, used: Int64) {
        self.start = start
        self.end = end
        self.limit = limit
        self.used = used
    }

    public var remaining: Int64 { max(0, limit - used) }
    public static let collection = "quotas"
}

/// One ledger entry: `usage/{requestId}`.
public struct UsageRecord: Codable, Sendable, Hashable {
    public var requestId: String
    public var accountId: String
    public var keyId: String?
    public var time: Timestamp
    public var endpoint: String
    public var units: Int64

    public init(requestId: String, accountId: String, keyId: String?, time: Timestamp, endpoint: String, units: Int64) {
        self.requestId = requestId
        self.accountId = accountId
        self.keyId = keyId
        self.time = time
        self.endpoint = endpoint
        self.units = units
    }

    public static let collection = "usage"
}

/// A processed Stripe event: `stripeEvents/{eventId}`, the dedupe marker written in
/// the same transaction as the event's effect. It holds only what the event itself
/// says, so replays in any order leave identical markers.
public struct StripeEventMarker: Codable, Sendable, Hashable {
    public var type: String
    public var created: Int64
    public var livemode: Bool
    public var accountId: String?

    public init(type: String, created: Int64, livemode: Bool, accountId: String?) {
        self.type = type
        self.created = created
        self.livemode = livemode
        self.accountId = accountId
    }

    public static let collection = "stripeEvents"
}

/// A poison input, kept so a person can inspect and replay it: `deadLetters/{id}`.
public struct DeadLetter: Codable, Sendable, Hashable {
    public var function: String
    public var trigger: String
    public var reason: String
    /// The raw request body, byte for byte.
    public var body: Data
    /// The trigger's metadata: message id, task name, event id, headers that identify it.
    public var metadata: [String: String]
    public var received: Timestamp

    public init(function: String, trigger: String, reason: String, body: Data, metadata: [String: String], received: Timestamp) {
        self.function = function
        self.trigger = trigger
        self.reason = reason
        self.body = body
        self.metadata = metadata
        self.received = received
    }

    public static let collection = "deadLetters"
}
