import Foundation
import TollgateModel

/// One usage event as the API service publishes it to `usage-events`:
/// `{"requestId", "accountId", "keyId"?, "time", "endpoint", "units", "nodes"?, "nodeDimensionUnits"?}`.
/// A message holds one event, an array of events, or `{"events": [...]}`.
public enum UsageEvents {
    /// At most this many events in one message, so one message is one commit
    /// (a ledger entry each, plus two counters per account and day: under 500 writes).
    public static let maxPerMessage = 150

    /// - Parameter now: the recorder's clock: `time` must lie between
    ///   ``InputBounds/usageTimeEarliest`` and ``InputBounds/usageTimeFutureSeconds`` after it.
    /// - Throws: `INVALID_ARGUMENT` naming the first bad event and field.
    public static func decode(_ data: Data, now: Timestamp) throws -> [UsageRecord] {
        let root = try JSONValue.parse(data)
        let items: [JSONValue]
        switch root {
        case .array(let array): items = array
        case .object(let object) where object["events"] != nil:
            guard let array = object["events"]?.arrayValue else { throw TollgateError(.invalidArgument, "\"events\" is not an array") }
            items = array
        case .object: items = [root]
        default: throw TollgateError(.invalidArgument, "a usage message is an event, an array of events or {\"events\": [...]}")
        }
        guard !items.isEmpty else { throw TollgateError(.invalidArgument, "a usage message holds no events") }
        guard items.count <= maxPerMessage else {
            throw TollgateError(.invalidArgument, "\(items.count) events in one message; at most \(maxPerMessage)")
        }
        return try items.enumerated().map { index, item in try record(item, index: index, now: now) }
    }

    static func record(_ item: JSONValue, index: Int, now: Timestamp) throws -> UsageRecord {
        func fail(_ field: String, _ problem: String) -> TollgateError {
            TollgateError(.invalidArgument, "event \(index): \(field) \(problem)")
        }
        func string(_ field: String) throws -> String {
            guard let value = item[field]?.stringValue, !value.isEmpty else { throw fail(field, "is missing or not a string") }
            return value
        }
        func count(_ field: String, required: Bool) throws -> Int64 {
            guard let value = item[field] else {
                if required { throw fail(field, "is missing") }
                return 0
            }
            let bounds = InputBounds.usageQuantity
            guard let number = value.integerValue, bounds.contains(number) else {
                throw fail(field, "is not a whole number from \(bounds.lowerBound) to \(bounds.upperBound)")
            }
            return number
        }
        guard item.objectValue != nil else { throw fail("the event", "is not an object") }
        let requestId = try string("requestId")
        let accountId = try string("accountId")
        for (field, id) in [("requestId", requestId), ("accountId", accountId)] where !InputBounds.usageIdBytes.contains(id.utf8.count) {
            throw fail(field, "is longer than \(InputBounds.usageIdBytes.upperBound) bytes")
        }
        // Both become document ids.
        do {
            _ = try DocumentPath(collection: UsageRecord.collection, id: UsageRecord.ledgerID(accountId: accountId, requestId: requestId))
            _ = try DocumentPath(collection: Account.collection, id: accountId)
        } catch { throw fail("requestId or accountId", "is not a valid id") }
        guard let time = Timestamp(rfc3339: try string("time")) else { throw fail("time", "is not an RFC 3339 instant") }
        guard time >= InputBounds.usageTimeEarliest, time <= now.adding(seconds: InputBounds.usageTimeFutureSeconds) else {
            throw fail("time", "is before 2000-01-01 or more than 7 days after the recorder's clock (\(now))")
        }
        var keyId: String?
        if let key = item["keyId"] {
            guard let text = key.stringValue else { throw fail("keyId", "is not a string") }
            keyId = text
        }
        return UsageRecord(
            requestId: requestId, accountId: accountId, keyId: keyId, time: time, endpoint: try string("endpoint"),
            units: try count("units", required: true), nodes: try count("nodes", required: false),
            nodeDimensionUnits: try count("nodeDimensionUnits", required: false))
    }
}
