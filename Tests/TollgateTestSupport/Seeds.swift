import Foundation
import Testing
import TollgateExport
import TollgateModel

/// Seeds `count` ledger entries recorded during `day`, for `accounts` accounts.
package func seedLedger(_ store: any DocumentStore, day: UTCDay, count: Int, accounts: Int = 3, late: Int = 0) async throws {
    var writes: [Write] = []
    for index in 0..<count {
        let recorded = Timestamp(microsecondsSinceEpoch: day.start.microsecondsSinceEpoch + Int64(index) * 86_400_000_000 / Int64(count))
        // The last `late` records happened the day before: they arrived late.
        let time = index >= count - late ? Timestamp(secondsSinceEpoch: day.start.secondsSinceEpoch - 60) : recorded
        let record = UsageRecord(
            requestId: "req_\(day)_\(Hex.padded(index, width: 8))", accountId: "acct_\(index % accounts)", keyId: nil, time: time,
            endpoint: "/v1/graphs", units: Int64(index % 7 + 1), recorded: recorded)
        writes.append(
            Write.set(try DocumentPath(collection: UsageRecord.collection, id: record.requestId), try FieldValueEncoder().encode(record)))
        if writes.count == 500 {
            try await store.commit(writes)
            writes.removeAll()
        }
    }
    if !writes.isEmpty { try await store.commit(writes) }
}

/// The export signing key the export tests share.
package let exportTestSigner = try! ExportSigner(base64: Data(Array("export-tests-key-0123456789abcde".utf8)).base64EncodedString())
