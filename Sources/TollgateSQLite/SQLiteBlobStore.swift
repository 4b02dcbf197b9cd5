import Foundation
import GRDB
import TollgateModel

/// The `BlobStore` fake: whole objects with Cloud Storage's generation numbers and
/// `ifGenerationMatch` preconditions (0 = must not exist).
public struct SQLiteBlobStore: BlobStore {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    @discardableResult
    public func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64 {
        try BlobName.validate(name)
        return try await database.write { db in
            let current = try Int64.fetchOne(db, sql: "SELECT generation FROM blobs WHERE name = ?", arguments: [name])
            if let expected = ifGenerationMatch, expected != (current ?? 0) {
                throw TollgateError(.failedPrecondition, "object \(name) is at generation \(current ?? 0), not \(expected)")
            }
            // Generations are the commit time in microseconds, as in GCS: always increasing.
            let generation = try self.database.nextCommitTime(db).microsecondsSinceEpoch
            try db.execute(
                sql: "INSERT OR REPLACE INTO blobs (name, data, content_type, generation) VALUES (?, ?, ?, ?)",
                arguments: [name, Data(data), contentType, generation])
            return generation
        }
    }

    public func read(_ name: String) async throws -> BlobObject {
        try await database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM blobs WHERE name = ?", arguments: [name]) else {
                throw TollgateError(.notFound, "no object \(name)")
            }
            return BlobObject(
                name: name, data: [UInt8](row["data"] as Data), contentType: row["content_type"], generation: row["generation"])
        }
    }

    public func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage {
        guard pageSize > 0, pageSize <= 1_000 else { throw TollgateError(.invalidArgument, "page size must be 1 to 1,000") }
        return try await database.read { db in
            // Names compare as UTF-8 bytes, like GCS listings; the page token is the last name.
            let names = try String.fetchAll(
                db, sql: "SELECT name FROM blobs WHERE substr(name, 1, length(?)) = ? AND name > ? ORDER BY CAST(name AS BLOB) LIMIT ?",
                arguments: [prefix, prefix, pageToken ?? "", pageSize + 1])
            let page = Array(names.prefix(pageSize))
            return BlobPage(names: page, nextPageToken: names.count > pageSize ? page.last : nil)
        }
    }

    public func delete(_ name: String, ifGenerationMatch: Int64?) async throws {
        try await database.write { db in
            guard let current = try Int64.fetchOne(db, sql: "SELECT generation FROM blobs WHERE name = ?", arguments: [name]) else {
                throw TollgateError(.notFound, "no object \(name)")
            }
            if let expected = ifGenerationMatch, expected != current {
                throw TollgateError(.failedPrecondition, "object \(name) is at generation \(current), not \(expected)")
            }
            try db.execute(sql: "DELETE FROM blobs WHERE name = ?", arguments: [name])
        }
    }
}
