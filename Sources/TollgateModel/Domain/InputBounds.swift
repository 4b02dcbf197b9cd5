/// The documented bounds of every number Tollgate reads from outside (headers, JSON,
/// token claims, query strings), checked where the input is decoded so that no later
/// arithmetic on it can overflow. docs/input-bounds.md lists them with their reasons.
public enum InputBounds {
    /// `units`, `nodes` and `nodeDimensionUnits` of one usage event: 0…10⁹. A day of
    /// 10⁹ requests at the bound still sums below 2⁶³ in every counter and export total.
    public static let usageQuantity: ClosedRange<Int64> = 0...1_000_000_000
    /// `X-Tollgate-Cost` of one request.
    public static let requestCost: ClosedRange<Int64> = 0...1_000_000
    /// Enterprise limits from a subscription's metadata (`tollgate_monthly_quota_units` …):
    /// 1…10¹⁵, so `used + cost` can never pass 2⁶³.
    public static let entitlementLimit: ClosedRange<Int64> = 1...1_000_000_000_000_000
    /// A usage event's `requestId` and `accountId`: 1…512 bytes of UTF-8 each.
    public static let usageIdBytes: ClosedRange<Int> = 1...512
    /// A usage event's `time`: no earlier than 2000-01-01T00:00:00Z, and no more than 7
    /// days ahead of the recorder's clock. Exports and billing go by when the ledger took
    /// an event in (`recorded`), so a late event is still billed once; the window only
    /// keeps absurd instants (year 1, year 9999) out of the day counters and analytics.
    public static let usageTimeEarliest = Timestamp(secondsSinceEpoch: 946_684_800)
    public static let usageTimeFutureSeconds: Int64 = 7 * 86_400
    /// A Clerk id (`user_…`, `org_…`) and an account id named by a caller (Stripe's
    /// `client_reference_id`, `tollgate_account_id`): 1…128 characters of `A–Z a–z 0–9 _ -`,
    /// which every Clerk and Tollgate id fits and which is always a valid document id.
    public static let identifierLength: ClosedRange<Int> = 1...128
    public static func isIdentifier(_ text: String) -> Bool {
        identifierLength.contains(text.utf8.count)
            && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 95 || $0 == 45 }
    }
    /// A Clerk event's `timestamp` (milliseconds): from 2000-01-01 to 9999-12-31, within
    /// Firestore's range of timestamps.
    public static let clerkEventMilliseconds: ClosedRange<Int64> = 946_684_800_000...253_402_300_799_999
    /// A Stripe invoice's `attempt_count`.
    public static let invoiceAttempts: ClosedRange<Int64> = 0...10_000
}

extension Int64 {
    /// `self + other`, or `FAILED_PRECONDITION` naming `what` instead of a trap.
    public func checkedAdding(_ other: Int64, _ what: @autoclosure () -> String) throws -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard !overflow else { throw TollgateError(.failedPrecondition, "\(what()) overflows a 64-bit integer") }
        return sum
    }
}
