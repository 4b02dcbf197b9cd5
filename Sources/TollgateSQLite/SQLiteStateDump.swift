import Crypto
import Foundation
import GRDB
import TollgateModel

extension SQLiteDatabase {
    /// The whole state as deterministic JSON: documents by path (their fields as plain
    /// JSON), objects by name (size, type and SHA-256), tasks by queue and name, and the
    /// meter events the Stripe fake accepted.
    /// Commit times, generations and message logs are left out: they record when and in
    /// which order things happened, not what the state is.
    public func stateDump() async throws -> JSONValue {
        try await read { db in
            var documents: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT collection, id, fields FROM documents") {
                let fields = try SQLiteDocumentStore.decodeFields(row["fields"])
                documents["\(SQLiteKey.decode(row["collection"]))/\(SQLiteKey.decode(row["id"]))"] = FieldValue.map(fields).plainJSON
            }
            var blobs: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, size, content_type, data_key FROM blobs") {
                var hash = SHA256()
                let chunks = try Data.fetchCursor(
                    db, sql: "SELECT data FROM blob_data WHERE key = ? ORDER BY offset", arguments: [row["data_key"] as String])
                while let chunk = try chunks.next() { hash.update(data: chunk) }
                blobs[row["name"]] = .object([
                    "bytes": .integer(row["size"]), "contentType": .string(row["content_type"]),
                    "sha256": .string(Hex.encode(hash.finalize())),
                ])
            }
            var tasks: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT queue, name, url, body, state FROM tasks") {
                tasks["\(row["queue"] as String)/\(row["name"] as String)"] = .object([
                    "url": .string(row["url"]), "body": .string(String(decoding: row["body"] as Data, as: UTF8.self)),
                    "state": .string(row["state"]),
                ])
            }
            var meterEvents: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM stripe_meter_events") {
                meterEvents[row["identifier"]] = .object([
                    "event_name": .string(row["event_name"]), "customer": .string(row["customer"]), "value": .string(row["value"]),
                    "timestamp": .integer(row["timestamp"]),
                ])
            }
            var dump: [String: JSONValue] = [
                "documents": .object(documents), "objects": .object(blobs), "tasks": .object(tasks),
                "stripeMeterEvents": .object(meterEvents),
            ]
            // Push deliveries, by subscription and message sequence (replays leave them out).
            var deliveries: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT subscription, seq, attempts, state, last_status FROM push_deliveries") {
                deliveries["\(row["subscription"] as String)/\(row["seq"] as Int64)"] = .object([
                    "attempts": .integer(row["attempts"]), "state": .string(row["state"]),
                    "lastStatus": (row["last_status"] as Int64?).map(JSONValue.integer) ?? .null,
                ])
            }
            if !deliveries.isEmpty { dump["pushDeliveries"] = .object(deliveries) }
            return .object(dump)
        }
    }
}
