import Foundation
import TollgateModel
import TollgateRuntime

/// `usage-recorder`: appends usage events to the ledger exactly once per account and
/// request id and updates the account's counters in the same transaction. A redelivered message changes
/// nothing; a malformed one is dead-lettered and acknowledged.
public struct UsageRecorderFunction: BuildableFunction {
    public typealias Event = PubSubEvent

    public static let declaration = FunctionDeclaration(
        name: "usage-recorder", trigger: .pubSub(topic: Topic.usageEvents, maxDeliveryAttempts: 10, ackDeadlineSeconds: 30),
        service: .init(concurrency: 20, maxInstances: 10, timeoutSeconds: 30))

    let store: any DocumentStore

    public init(store: any DocumentStore) { self.store = store }

    public static func make(_ setup: FunctionSetup) throws -> Self { Self(store: setup.ports.store) }

    public func handle(_ event: PubSubEvent, context: FunctionContext) async throws -> FunctionResponse {
        let records = try UsageEvents.decode(event.message.data, now: context.clock.now())
        let recorded = try await store.runTransaction { transaction -> Int in
            // Read inside the transaction: it commits within Firestore's 270 s transaction
            // lifetime of this time, which is what lets an export trust a cutoff.
            let now = context.clock.now()
            // Keyed by the ledger path, whose equality is byte for byte as the store's.
            var fresh: [DocumentPath: UsageRecord] = [:]
            for var record in records {
                let path = try DocumentPath(collection: UsageRecord.collection, id: record.ledgerID)
                guard fresh[path] == nil else { continue }
                record.recorded = now
                // The ledger entry is its own dedupe marker.
                guard try await transaction.get(path) == nil else { continue }
                if try await Self.isRecordedUnderLegacyID(record, in: transaction) { continue }
                fresh[path] = record
            }
            var totals: [DocumentPath: UsageCounters] = [:]
            for (path, record) in fresh.sorted(by: { $0.key < $1.key }) {
                try transaction.create(path, try FieldValueEncoder().encode(record))
                let day = String(record.time.rfc3339.prefix(10))
                for path in [
                    try DocumentPath(collection: UsageCounters.collection, id: record.accountId),
                    try DocumentPath("\(UsageCounters.collection)/\(record.accountId)/days/\(day)"),
                ] {
                    // Bounded at decode (≤ 10⁹ each, ≤ 150 events): the sums cannot
                    // overflow; the store's increment saturates at 2⁶³−1 as Firestore's does.
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

    /// Whether a ledger written before entries were keyed by account holds this request
    /// under its bare request id (`usage/{requestId}`) for the same account: a message
    /// redelivered across the upgrade is then not counted twice. Another account's legacy
    /// entry under the same request id does not make this one a duplicate.
    static func isRecordedUnderLegacyID(_ record: UsageRecord, in transaction: any DocumentTransaction) async throws -> Bool {
        guard let legacy = try? DocumentPath(collection: UsageRecord.collection, id: record.requestId),
            let snapshot = try await transaction.get(legacy), case .string(let accountId) = snapshot.fields["accountId"]
        else { return false }
        return accountId.utf8.elementsEqual(record.accountId.utf8)
    }
}
