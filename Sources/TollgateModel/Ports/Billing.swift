/// Reports metered usage to the billing provider (Stripe Billing meter events).
public protocol Billing: Sendable {
    /// Sends one meter event. The provider deduplicates by `identifier`, so sending the
    /// same event again (a retry) never bills twice.
    /// - Throws: `INVALID_ARGUMENT` when the provider refuses the event itself (never
    ///   worth retrying), `UNAVAILABLE`/`DEADLINE_EXCEEDED`/`RESOURCE_EXHAUSTED` when it may
    ///   succeed later, `PERMISSION_DENIED` when our credentials are refused.
    func report(_ event: MeterEvent) async throws -> MeterEventReceipt
}

/// One meter event: `value` units of `eventName` for a customer at `timestamp`.
public struct MeterEvent: Sendable, Hashable {
    public var eventName: String
    public var customerId: String
    public var value: Int64
    /// Stable for the same usage, so the provider's dedupe makes retries safe.
    public var identifier: String
    public var timestamp: Timestamp

    public init(eventName: String, customerId: String, value: Int64, identifier: String, timestamp: Timestamp) {
        self.eventName = eventName
        self.customerId = customerId
        self.value = value
        self.identifier = identifier
        self.timestamp = timestamp
    }
}

/// What the provider accepted.
public struct MeterEventReceipt: Sendable, Hashable {
    public var identifier: String
    public var livemode: Bool
    public init(identifier: String, livemode: Bool) {
        self.identifier = identifier
        self.livemode = livemode
    }
}
