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
///
/// The limit is fixed when the window starts; an upgrade mid-window raises it at once,
/// a downgrade waits for the next window (see ``effectiveLimit(entitlements:)``).
public struct QuotaWindow: Codable, Sendable, Hashable {
    public var start: Timestamp
    public var end: Timestamp
    public var limit: Int64
    /// Units admitted, plus units leased to instances and not yet returned: whatever the
    /// leases' holders do, `used ≤ limit` bounds what can be admitted.
    public var used: Int64
    /// The leases of this window's units, by instance; absent when none was granted.
    public var leases: [String: QuotaLease]?
    /// How many leases `leases` holds, kept beside it so that a grant written without a
    /// transaction learns the number of holders from its own write (an increment's result).
    public var holders: Int64?

    public init(
        start: Timestamp, end: Timestamp, limit: Int64, used: Int64, leases: [String: QuotaLease]? = nil, holders: Int64? = nil
    ) {
        self.start = start
        self.end = end
        self.limit = limit
        self.used = used
        self.leases = leases
        self.holders = holders
    }

    public var remaining: Int64 { max(0, limit - used) }
    public static let collection = "quotas"

    /// The limit in force now: the higher of the window's and the current entitlements'.
    public func effectiveLimit(entitlements: Entitlements) -> Int64 { max(limit, entitlements.monthlyQuotaUnits) }

    /// Whether the window is over at `now` (its end is excluded): the next request, or
    /// quota-reset, starts the next one.
    public func hasEnded(at now: Timestamp) -> Bool { now >= end }

    /// The window in force at `now`, the one place the rule lives: the stored window until
    /// it ends, then the one that follows (``starting(at:period:account:)``), never stored
    /// here. auth-validator, account-api and quota-reset all read windows through it.
    public static func current(_ stored: QuotaWindow?, account: Account, period: QuotaPeriod, now: Timestamp) -> QuotaWindow {
        if let stored, !stored.hasEnded(at: now) { return stored }
        return starting(at: now, period: period, account: account)
    }

    /// The window that follows once this one has ended: the period's window containing
    /// `now` (idle months are skipped, not replayed), with the entitlements' limit.
    public static func starting(at now: Timestamp, period: QuotaPeriod, account: Account) -> QuotaWindow {
        let (start, end) = period.window(containing: now, billing: account.billing)
        return QuotaWindow(start: start, end: end, limit: account.entitlements.monthlyQuotaUnits, used: 0)
    }
}

/// Units of a window handed to one instance to admit from memory (see docs/quota-leases.md).
/// They are counted in the window's `used` when granted; the holder spends them until
/// `expires` (less its clock margin) and may return what it did not spend while the lease
/// is still its own. A lease that expires unreturned counts as spent.
public struct QuotaLease: Codable, Sendable, Hashable {
    /// Changes with every new lease of the same instance, so a late return of an old one
    /// is recognised and refused.
    public var id: String
    /// Units granted in this lease so far (top-ups add to it).
    public var granted: Int64
    public var expires: Timestamp

    public init(id: String, granted: Int64, expires: Timestamp) {
        self.id = id
        self.granted = granted
        self.expires = expires
    }
}

/// One ledger entry: `usage/{ledgerID}`, one per account and API request the customer's
/// API served (see ``ledgerID(accountId:requestId:)``).
public struct UsageRecord: Codable, Sendable, Hashable {
    public var requestId: String
    public var accountId: String
    public var keyId: String?
    public var time: Timestamp
    public var endpoint: String
    public var units: Int64
    /// The product's own measures: nodes processed and node-dimension units.
    public var nodes: Int64
    public var nodeDimensionUnits: Int64
    /// When the ledger took it in (the recorder's clock inside its transaction). Exports
    /// partition by this, so a record that arrives late still lands in exactly one export.
    public var recorded: Timestamp

    public init(
        requestId: String, accountId: String, keyId: String?, time: Timestamp, endpoint: String, units: Int64, nodes: Int64 = 0,
        nodeDimensionUnits: Int64 = 0, recorded: Timestamp? = nil
    ) {
        self.requestId = requestId
        self.accountId = accountId
        self.keyId = keyId
        self.time = time
        self.endpoint = endpoint
        self.units = units
        self.nodes = nodes
        self.nodeDimensionUnits = nodeDimensionUnits
        self.recorded = recorded ?? time
    }

    public static let collection = "usage"

    /// The ledger entry's id, which is also its dedupe marker: the account and the
    /// request id, so two tenants' services may use the same request id. `%` and `:` in
    /// the account id are percent-escaped, so the first `:` ends it and no two pairs share
    /// an id: `acct_1:req_9`.
    ///
    /// Ledgers written before this key keep their entries under `usage/{requestId}`;
    /// exports, retention and reconciliation find entries by `recorded`, never by id, and
    /// the recorder also treats a legacy entry of the same account as recorded (see
    /// docs/ledger.md).
    public static func ledgerID(accountId: String, requestId: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(accountId.utf8.count + requestId.utf8.count + 1)
        for scalar in accountId.unicodeScalars {
            switch scalar {
            case "%": escaped += "%25"
            case ":": escaped += "%3A"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + ":" + requestId
    }

    public var ledgerID: String { Self.ledgerID(accountId: accountId, requestId: requestId) }

    /// The ledger entries taken in during `day`, in ledger order: what one day's export
    /// holds, what retention deletes with it, what reconciliation recounts.
    public static func recorded(during day: UTCDay) -> DocumentQuery {
        DocumentQuery(collection: collection).filter("recorded", .greaterThanOrEqual, .timestamp(day.start))
            .filter("recorded", .lessThan, .timestamp(day.end)).order(by: "recorded")
    }
}

/// An account's running totals of recorded usage: `usageCounters/{accountId}`, and per
/// UTC day `usageCounters/{accountId}/days/{YYYY-MM-DD}`.
public struct UsageCounters: Codable, Sendable, Hashable {
    public var requests: Int64
    public var units: Int64
    public var nodes: Int64
    public var nodeDimensionUnits: Int64

    public init(requests: Int64 = 0, units: Int64 = 0, nodes: Int64 = 0, nodeDimensionUnits: Int64 = 0) {
        self.requests = requests
        self.units = units
        self.nodes = nodes
        self.nodeDimensionUnits = nodeDimensionUnits
    }

    public static let collection = "usageCounters"
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
