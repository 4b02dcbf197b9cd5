import Crypto
import Foundation
import GRDB
import TollgateModel

/// The `BlobStore` fake: objects with Cloud Storage's generation numbers and
/// `ifGenerationMatch` preconditions (0 = must not exist), stored as chunks so an object
/// of any size is written and read without holding it whole; streamed uploads behave as
/// resumable sessions (chunks in multiples of 256 KiB but the last, nothing visible
/// until the upload finishes).
public struct SQLiteBlobStore: BlobStore {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    @discardableResult
    public func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64 {
        try BlobName.validate(name)
        return try await database.write { db in
            try self.checkPrecondition(db, name: name, ifGenerationMatch: ifGenerationMatch)
            let key = UUID().uuidString
            try db.execute(sql: "INSERT INTO blob_data (key, offset, data) VALUES (?, 0, ?)", arguments: [key, Data(data)])
            return try self.commitObject(db, name: name, size: Int64(data.count), contentType: contentType, dataKey: key)
        }
    }

    public func upload(_ name: String, contentType: String, ifGenerationMatch: Int64?) async throws -> any BlobUpload {
        try BlobName.validate(name)
        let id = UUID().uuidString
        let now = database.clock.now().microsecondsSinceEpoch
        try await database.write { db in
            // Sessions never finished expire after a week, as in GCS.
            let expired = now - 7 * 86_400 * 1_000_000
            try db.execute(
                sql: "DELETE FROM blob_data WHERE key IN (SELECT id FROM blob_uploads WHERE started < ?)", arguments: [expired])
            try db.execute(sql: "DELETE FROM blob_uploads WHERE started < ?", arguments: [expired])
            try db.execute(
                sql: "INSERT INTO blob_uploads (id, name, content_type, if_generation_match, started) VALUES (?, ?, ?, ?, ?)",
                arguments: [id, name, contentType, ifGenerationMatch, now])
        }
        return SQLiteBlobUpload(store: self, id: id, name: name)
    }

    public func read(_ name: String) async throws -> BlobObject {
        try await database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM blobs WHERE name = ?", arguments: [name]) else {
                throw TollgateError(.notFound, "no object \(name)")
            }
            var data: [UInt8] = []
            data.reserveCapacity(row["size"] as Int)
            let chunks = try Data.fetchCursor(
                db, sql: "SELECT data FROM blob_data WHERE key = ? ORDER BY offset", arguments: [row["data_key"] as String])
            while let chunk = try chunks.next() { data.append(contentsOf: chunk) }
            return BlobObject(name: name, data: data, contentType: row["content_type"], generation: row["generation"])
        }
    }

    public func read(_ name: String, range: Range<Int64>) async throws -> [UInt8] {
        try await database.read { db in
            guard let key = try String.fetchOne(db, sql: "SELECT data_key FROM blobs WHERE name = ?", arguments: [name]) else {
                throw TollgateError(.notFound, "no object \(name)")
            }
            var bytes: [UInt8] = []
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT offset, data FROM blob_data WHERE key = ? AND offset < ? AND offset + length(data) > ? ORDER BY offset",
                arguments: [key, range.upperBound, range.lowerBound])
            while let row = try rows.next() {
                let offset: Int64 = row["offset"]
                let data: Data = row["data"]
                let from = Int(max(range.lowerBound - offset, 0))
                let to = Int(min(range.upperBound - offset, Int64(data.count)))
                bytes.append(contentsOf: data[data.startIndex + from..<data.startIndex + to])
            }
            return bytes
        }
    }

    public func attributes(_ name: String) async throws -> BlobAttributes? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM blobs WHERE name = ?", arguments: [name]).map {
                BlobAttributes(name: name, size: $0["size"], contentType: $0["content_type"], generation: $0["generation"])
            }
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

    /// A link shaped as a V4 signed URL (HMAC-signed, as with a GCS HMAC key) with its
    /// checks. It points where `serve` answers it (``setLinkBase(_:)``), else at
    /// ``linkHost``, which nothing serves.
    public func signedURL(_ name: String, expiresInSeconds: Int64, now: Timestamp) async throws -> String {
        try SignedURLV4.checkExpiry(expiresInSeconds)
        try BlobName.validate(name)
        let path = "/local/" + PercentEncoding.objectPath(name)
        let query =
            "X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Date=\(SignedURLV4.dateStamp(now))&X-Goog-Expires=\(expiresInSeconds)"
            + "&X-Goog-SignedHeaders=host"
        let base = try await database.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM local_settings WHERE name = 'blob_link_base'")
        }
        let key = try await linkKey()
        return
            "\(base ?? "https://\(Self.linkHost)")\(path)?\(query)&X-Goog-Signature=\(Self.signature(path: path, query: query, key: key))"
    }

    /// The state's own signing key: 32 random bytes drawn the first time a link is made, so
    /// a link cannot be made (or a day's receipts opened) without the state file.
    func linkKey() async throws -> Data {
        if let key = try await database.read({ db in
            try String.fetchOne(db, sql: "SELECT value FROM local_settings WHERE name = 'blob_link_key'")
        }) {
            return Data(key.utf8)
        }
        var random = SystemRandomNumberGenerator()
        let drawn = Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        return try await database.write { db in
            // Two processes may draw at once: the first key written is the state's.
            try db.execute(sql: "INSERT OR IGNORE INTO local_settings (name, value) VALUES ('blob_link_key', ?)", arguments: [drawn])
            return Data(try String.fetchOne(db, sql: "SELECT value FROM local_settings WHERE name = 'blob_link_key'")!.utf8)
        }
    }

    /// Where the fake's links point without `serve`: a name that does not resolve.
    public static let linkHost = "storage.tollgate.local"

    /// Points the links made from now on at `base` (`serve`'s `…/_emulator/storage`).
    public func setLinkBase(_ base: String) async throws {
        try await database.write { db in
            try db.execute(
                sql:
                    "INSERT INTO local_settings (name, value) VALUES ('blob_link_base', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                arguments: [base])
        }
    }

    /// HMAC-SHA256 over the method, path and query under the state's key: a link altered in
    /// any part is refused, as GCS refuses it.
    static func signature(path: String, query: String, key: Data) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("GET\n\(path)\n\(query)".utf8), using: SymmetricKey(data: key))
        return Hex.encode(Array(mac))
    }

    /// Why a link is refused, in GCS's XML API terms.
    public enum LinkRefusal: Error, Equatable {
        /// 403 `SignatureDoesNotMatch`: any part of the link was altered.
        case signatureDoesNotMatch
        /// 400 `ExpiredToken`: past `X-Goog-Date` + `X-Goog-Expires`.
        case expired
        /// 400 `InvalidArgument`: `X-Goog-Expires` is not 1 to 604800 seconds (seven days),
        /// the range GCS signs and accepts.
        case invalidExpiry
        /// 404 `NoSuchKey`.
        case noSuchKey
    }

    /// The object a link made by ``signedURL(_:expiresInSeconds:now:)`` names, checked as
    /// GCS checks one: signature over the path and query, then the expiry, then the object.
    /// - Parameters: path: the object path (`/local/…`); query: the raw query.
    public func open(linkPath path: String, query: String, now: Timestamp) async throws -> BlobObject {
        var signed: [Substring] = []
        var signature: Substring?
        var date: Substring?
        var expires: Int64?
        for item in query.split(separator: "&") {
            if item.hasPrefix("X-Goog-Signature=") {
                signature = item.dropFirst("X-Goog-Signature=".count)
                continue
            }
            signed.append(item)
            if item.hasPrefix("X-Goog-Date=") { date = item.dropFirst("X-Goog-Date=".count) }
            if item.hasPrefix("X-Goog-Expires=") { expires = Int64(item.dropFirst("X-Goog-Expires=".count)) }
        }
        // Checked before any arithmetic: a link's expiry is a number anyone can type.
        guard let expires, SignedURLV4.expiries.contains(expires) else { throw LinkRefusal.invalidExpiry }
        guard let signature, signature == Self.signature(path: path, query: signed.joined(separator: "&"), key: try await linkKey()) else {
            throw LinkRefusal.signatureDoesNotMatch
        }
        guard let date, let start = Self.time(stamp: String(date)),
            now.secondsSinceEpoch >= start.secondsSinceEpoch, now.secondsSinceEpoch < start.secondsSinceEpoch + expires
        else { throw LinkRefusal.expired }
        guard path.hasPrefix("/local/"), let name = String(path.dropFirst("/local/".count)).removingPercentEncoding else {
            throw LinkRefusal.noSuchKey
        }
        do { return try await read(name) } catch let error as TollgateError where error.code == .notFound { throw LinkRefusal.noSuchKey }
    }

    /// `20260101T000000Z` back to a time.
    static func time(stamp: String) -> Timestamp? {
        let digits = stamp.filter(\.isNumber)
        guard stamp.count == 16, digits.count == 14 else { return nil }
        let iso =
            "\(digits.prefix(4))-\(digits.dropFirst(4).prefix(2))-\(digits.dropFirst(6).prefix(2))T"
            + "\(digits.dropFirst(8).prefix(2)):\(digits.dropFirst(10).prefix(2)):\(digits.dropFirst(12).prefix(2))Z"
        return Timestamp(rfc3339: iso)
    }

    public func delete(_ name: String, ifGenerationMatch: Int64?) async throws {
        try await database.write { db in
            guard let current = try Int64.fetchOne(db, sql: "SELECT generation FROM blobs WHERE name = ?", arguments: [name]) else {
                throw TollgateError(.notFound, "no object \(name)")
            }
            if let expected = ifGenerationMatch, expected != current {
                throw TollgateError(.failedPrecondition, "object \(name) is at generation \(current), not \(expected)")
            }
            try db.execute(sql: "DELETE FROM blob_data WHERE key = (SELECT data_key FROM blobs WHERE name = ?)", arguments: [name])
            try db.execute(sql: "DELETE FROM blobs WHERE name = ?", arguments: [name])
        }
    }

    // MARK: - Shared with uploads

    func checkPrecondition(_ db: Database, name: String, ifGenerationMatch: Int64?) throws {
        let current = try Int64.fetchOne(db, sql: "SELECT generation FROM blobs WHERE name = ?", arguments: [name])
        if let expected = ifGenerationMatch, expected != (current ?? 0) {
            throw TollgateError(.failedPrecondition, "object \(name) is at generation \(current ?? 0), not \(expected)")
        }
    }

    /// Points the object at the chunks under `dataKey`, dropping the previous version's.
    func commitObject(_ db: Database, name: String, size: Int64, contentType: String, dataKey: String) throws -> Int64 {
        try db.execute(sql: "DELETE FROM blob_data WHERE key = (SELECT data_key FROM blobs WHERE name = ?)", arguments: [name])
        // Generations are the commit time in microseconds, as in GCS: always increasing.
        let generation = try database.nextCommitTime(db).microsecondsSinceEpoch
        try db.execute(
            sql: "INSERT OR REPLACE INTO blobs (name, size, content_type, generation, data_key) VALUES (?, ?, ?, ?, ?)",
            arguments: [name, size, contentType, generation, dataKey])
        return generation
    }
}

/// A resumable upload session of the fake.
struct SQLiteBlobUpload: BlobUpload {
    let store: SQLiteBlobStore
    let id: String
    let name: String

    func append(_ chunk: [UInt8]) async throws {
        guard !chunk.isEmpty else { return }
        let id = self.id
        try await store.database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT size, closed FROM blob_uploads WHERE id = ?", arguments: [id]) else {
                throw TollgateError(.notFound, "upload session \(id) is gone")
            }
            guard !(row["closed"] as Bool) else {
                throw TollgateError(.invalidArgument, "a chunk that is not a multiple of 256 KiB must be the last")
            }
            try db.execute(
                sql: "INSERT INTO blob_data (key, offset, data) VALUES (?, ?, ?)",
                arguments: [id, row["size"] as Int64, Data(chunk)])
            try db.execute(
                sql: "UPDATE blob_uploads SET size = size + ?, closed = ? WHERE id = ?",
                arguments: [chunk.count, chunk.count % Self.chunkGranularity != 0, id])
        }
    }

    func finish() async throws -> Int64 {
        let (id, name, store) = (self.id, self.name, self.store)
        return try await store.database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM blob_uploads WHERE id = ?", arguments: [id]) else {
                throw TollgateError(.notFound, "upload session \(id) is gone")
            }
            try store.checkPrecondition(db, name: name, ifGenerationMatch: row["if_generation_match"])
            try db.execute(sql: "DELETE FROM blob_uploads WHERE id = ?", arguments: [id])
            // The session's chunks become the object's: nothing is copied.
            return try store.commitObject(db, name: name, size: row["size"], contentType: row["content_type"], dataKey: id)
        }
    }
}
