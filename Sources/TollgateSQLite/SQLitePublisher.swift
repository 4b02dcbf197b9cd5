import Foundation
import GRDB
import TollgateModel

/// The `Publisher` fake: an append-only log of messages per topic. Publishing to a
/// topic that does not exist fails with `NOT_FOUND`, as in Pub/Sub; the topics the
/// functions declare are created by ``createTopic(_:)`` when the emulator starts.
public struct SQLitePublisher: Publisher {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    /// Creates a topic if it does not exist.
    /// - Returns: whether it was created (false: it already existed).
    @discardableResult
    public func createTopic(_ name: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO topics (name) VALUES (?)", arguments: [name])
            return db.changesCount == 1
        }
    }

    /// Whether a topic exists.
    public func topicExists(_ name: String) async throws -> Bool {
        try await database.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM topics WHERE name = ?", arguments: [name]) == true }
    }

    /// The topics, in name order, after `name` (exclusive), at most `limit`.
    public func topics(after name: String = "", limit: Int) async throws -> [String] {
        try await database.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM topics WHERE name > ? ORDER BY name LIMIT ?", arguments: [name, limit])
        }
    }

    /// Publishes a batch in one transaction, as one Pub/Sub `Publish` call: every message
    /// is appended or none is (an unknown topic or an invalid message refuses the batch).
    /// - Returns: the message ids, in the batch's order.
    public func publish(_ messages: [OutgoingMessage], to topic: String) async throws -> [String] {
        for message in messages { try message.validate() }
        let now = database.clock.now()
        return try await database.write { db in
            try messages.map { String(try Self.append(db, topic: topic, message: $0, at: now)) }
        }
    }

    @discardableResult
    public func publish(_ message: OutgoingMessage, to topic: String) async throws -> String {
        try message.validate()
        let now = database.clock.now()
        return String(try await database.write { db in try Self.append(db, topic: topic, message: message, at: now) })
    }

    /// Appends a message to a topic's log inside the caller's transaction.
    /// - Returns: its sequence number, which is its message id.
    static func append(_ db: Database, topic: String, message: OutgoingMessage, at now: Timestamp) throws -> Int64 {
        guard try Bool.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM topics WHERE name = ?"), arguments: [topic]) == true else {
            throw TollgateError(.notFound, "topic \(topic) does not exist")
        }
        let attributes = String(decoding: try JSONEncoder().encode(message.attributes), as: UTF8.self)
        try db.cachedStatement(sql: "INSERT INTO messages (topic, data, attributes, ordering_key, publish_time) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [topic, Data(message.data), attributes, message.orderingKey, now.microsecondsSinceEpoch])
        return db.lastInsertedRowID
    }

    static func message(_ row: Row) throws -> PublishedMessage {
        let attributes = try JSONDecoder().decode([String: String].self, from: Data((row["attributes"] as String).utf8))
        return PublishedMessage(
            sequence: row["seq"], topic: row["topic"], messageId: String(row["seq"] as Int64),
            message: OutgoingMessage(data: [UInt8](row["data"] as Data), attributes: attributes, orderingKey: row["ordering_key"]),
            publishTime: Timestamp(microsecondsSinceEpoch: row["publish_time"]))
    }

    /// The messages published to `topic` (or every topic), oldest first.
    public func published(topic: String? = nil, after sequence: Int64 = 0) async throws -> [PublishedMessage] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM messages WHERE (? IS NULL OR topic = ?) AND seq > ? ORDER BY seq",
                arguments: [topic, topic, sequence])
            return try rows.map(Self.message)
        }
    }
}

/// A message as the fake recorded it.
public struct PublishedMessage: Sendable, Hashable {
    public var sequence: Int64
    public var topic: String
    public var messageId: String
    public var message: OutgoingMessage
    public var publishTime: Timestamp
}
