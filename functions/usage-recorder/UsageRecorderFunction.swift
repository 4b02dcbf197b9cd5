import Foundation
import TollgateModel
import TollgateRuntime

/// `usage-recorder`: appends usage events to the ledger exactly once by request id and
/// updates the account's counters in the same transaction. A redelivered message changes
/// nothing; a malformed one is dead-lettered and acknowledged.
public struct UsageRecorderFunction: FunctionHandler {
    public typealias Event = PubSubEvent

    public static let declaration = FunctionDeclaration(
        name: "usage-recorder", trigger: .pubSub(topic: Topic.usageEvents, maxDeliveryAttempts: 10, ackDeadlineSeconds: 30),
        service: .init(concurrency: 20, maxInstances: 10, timeoutSeconds: 30))
    public var declaration: FunctionDeclaration { Self.declaration }

    let store: any DocumentStore

    public init(store: any DocumentStore) { self.store = store }

    public func handle(_ event: PubSubEvent, context: FunctionContext) async throws -> FunctionResponse {
        let records = try UsageEvents.decode(event.message.data)
        let recorded = try await store.runTransaction { transaction -> Int in
            // Read inside the transaction: it commits within Firestore's 270 s transaction
            // lifetime of this time, which is what lets an export trust a cutoff.
            let now = context.clock.now()
            var fresh: [String: UsageRecord] = [:]
            for var record in records where fresh[record.requestId] == nil {
                record.recorded = now
                // The ledger entry is its own dedupe marker.
                if try await transaction.get(try DocumentPath(collection: UsageRecord.collection, id: record.requestId)) == nil {
                    fresh[record.requestId] = record
                }
            }
            var totals: [DocumentPath: UsageCounters] = [:]
            for record in fresh.values.sorted(by: { $0.requestId < $1.requestId }) {
                try transaction.create(
                    try DocumentPath(collection: UsageRecord.collection, id: record.requestId), try FieldValueEncoder().encode(record))
                let day = String(record.time.rfc3339.prefix(10))
                for path in [
                    try DocumentPath(collection: UsageCounters.collection, id: record.accountId),
                    try DocumentPath("\(UsageCounters.collection)/\(record.accountId)/days/\(day)"),
                ] {
                    var counters = totals[path] ?? UsageCounters()
                    counters.requests += 1
                    counters.units += record.units
                    counters.nodes += record.nodes
                    counters.nodeDimensionUnits += record.nodeDimensionUnits
                    totals[path] = counters
                }
            }
            for (path, counters) in totals.sorted(by: { $0.key < $1.key }) {
                try transaction.write(
                    Write(
                        path: path, operation: .update([:]),
                        transforms: [
                            .increment("requests", .integer(counters.requests)), .increment("units", .integer(counters.units)),
                            .increment("nodes", .integer(counters.nodes)),
                            .increment("nodeDimensionUnits", .integer(counters.nodeDimensionUnits)),
                        ]))
            }
            return fresh.count
        }
        context.logger.info("recorded usage", metadata: ["events": "\(records.count)", "new": "\(recorded)"])
        return .json(200, .object(["events": .integer(Int64(records.count)), "recorded": .integer(Int64(recorded))]))
    }
}
