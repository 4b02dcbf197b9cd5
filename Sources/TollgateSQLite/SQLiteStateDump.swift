import Crypto
import Foundation
import GRDB
import TollgateModel

extension SQLiteDatabase {
    /// The whole state as deterministic JSON: documents by path (their fields as plain
    /// JSON), objects by name (size, type and SHA-256) and tasks by queue and name.
    /// Commit times, generations and message logs are left out: they record when and in
    /// which order things happened, not what the state is.
    public func stateDump() async throws -> JSONValue {
        try await read { db in
            var documents: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT collection, id, fields FROM documents") {
                let fields = try JSONDecoder().decode([String: FieldValue].self, from: Data((row["fields"] as String).utf8))
                documents["\(row["collection"] as String)/\(row["id"] as String)"] = FieldValue.map(fields).plainJSON
            }
            var blobs: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, data, content_type FROM blobs") {
                let data: Data = row["data"]
                blobs[row["name"]] = .object([
                    "bytes": .integer(Int64(data.count)), "contentType": .string(row["content_type"]),
                    "sha256": .string(Hex.encode(SHA256.hash(data: data))),
                ])
            }
            var tasks: [String: JSONValue] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT queue, name, url, body FROM tasks") {
                tasks["\(row["queue"] as String)/\(row["name"] as String)"] = .object([
                    "url": .string(row["url"]), "body": .string(String(decoding: row["body"] as Data, as: UTF8.self)),
                ])
            }
            return .object(["documents": .object(documents), "objects": .object(blobs), "tasks": .object(tasks)])
        }
    }
}
