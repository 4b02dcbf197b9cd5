import Foundation
import GRDB
import TollgateModel

/// Push subscriptions over the `Publisher` fake's message log, with Pub/Sub's delivery
/// semantics: a subscription receives the messages published after it was created; each
/// is pushed until acknowledged; a nack waits out the RetryPolicy's backoff; with a
/// dead-letter policy, the delivery after `maxDeliveryAttempts` failed ones is not made:
/// the message is forwarded to the dead-letter topic instead, in the same transaction.
public struct SQLitePushSubscriptions: Sendable {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    public struct Subscription: Sendable, Hashable {
        /// The short name (`projects/P/subscriptions/NAME`).
        public var name: String
        public var topic: String
        /// Where messages are pushed: `function/path` for the local cloud.
        public var endpoint: String
        public var ackDeadlineSeconds: Int
        public var maxDeliveryAttempts: Int?
        public var deadLetterTopic: String?
        public var retry: PushRetryPolicy

        public init(
            name: String, topic: String, endpoint: String, ackDeadlineSeconds: Int = 10, maxDeliveryAttempts: Int? = nil,
            deadLetterTopic: String? = nil, retry: PushRetryPolicy = .standard
        ) {
            self.name = name
            self.topic = topic
            self.endpoint = endpoint
            self.ackDeadlineSeconds = ackDeadlineSeconds
            self.maxDeliveryAttempts = maxDeliveryAttempts
            self.deadLetterTopic = deadLetterTopic
            self.retry = retry
        }
    }

    /// A message due for a push, with its delivery count so far.
    public struct Due: Sendable {
        public var subscription: Subscription
        public var message: PublishedMessage
        /// Failed deliveries before this one.
        public var previousAttempts: Int
        /// Pub/Sub's `deliveryAttempt` (1 for the first), sent only with a dead-letter policy.
        public var deliveryAttempt: Int? { subscription.deadLetterTopic == nil ? nil : previousAttempts + 1 }
    }

    /// Creates the subscription, or updates its settings (keeping its backlog). A new
    /// subscription starts after the last message published so far, as in Pub/Sub.
    /// - Throws: `NOT_FOUND` when the topic or the dead-letter topic does not exist.
    public func createOrUpdate(_ subscription: Subscription) async throws {
        try await database.write { db in
            for topic in [subscription.topic] + (subscription.deadLetterTopic.map { [$0] } ?? []) {
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM topics WHERE name = ?", arguments: [topic]) == true else {
                    throw TollgateError(.notFound, "topic \(topic) does not exist")
                }
            }
            let last = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM messages") ?? 0
            try db.execute(
                sql: """
                    INSERT INTO subscriptions (name, topic, endpoint, last_seq, ack_deadline, max_delivery_attempts, dead_letter_topic,
                      min_backoff, max_backoff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(name) DO UPDATE SET topic = excluded.topic, endpoint = excluded.endpoint,
                      ack_deadline = excluded.ack_deadline, max_delivery_attempts = excluded.max_delivery_attempts,
                      dead_letter_topic = excluded.dead_letter_topic, min_backoff = excluded.min_backoff, max_backoff = excluded.max_backoff
                    """,
                arguments: [
                    subscription.name, subscription.topic, subscription.endpoint, last, subscription.ackDeadlineSeconds,
                    subscription.maxDeliveryAttempts, subscription.deadLetterTopic, subscription.retry.minimumBackoffSeconds,
                    subscription.retry.maximumBackoffSeconds,
                ])
        }
    }

    /// Takes in what was published since the last call, then returns every delivery due
    /// at `now`, oldest message first.
    public func due(at now: Timestamp) async throws -> [Due] {
        try await database.write { db in
            let subscriptions = try Row.fetchAll(db, sql: "SELECT * FROM subscriptions")
            for row in subscriptions {
                let name: String = row["name"]
                let last: Int64 = row["last_seq"]
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO push_deliveries (subscription, seq, next_attempt)
                        SELECT ?, seq, publish_time FROM messages WHERE topic = ? AND seq > ?
                        """, arguments: [name, row["topic"] as String, last])
                try db.execute(
                    sql: "UPDATE subscriptions SET last_seq = (SELECT coalesce(max(seq), ?) FROM messages) WHERE name = ?",
                    arguments: [last, name])
            }
            let byName = Dictionary(uniqueKeysWithValues: subscriptions.map { (($0["name"] as String), Self.subscription($0)) })
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT d.subscription, d.attempts, m.* FROM push_deliveries d JOIN messages m ON m.seq = d.seq
                    WHERE d.state = 'pending' AND d.next_attempt <= ? ORDER BY d.next_attempt, d.seq, d.subscription
                    """, arguments: [now.microsecondsSinceEpoch]
            ).compactMap { row in
                guard let subscription = byName[row["subscription"]] else { return nil }
                return Due(subscription: subscription, message: try SQLitePublisher.message(row), previousAttempts: row["attempts"])
            }
        }
    }

    /// What the local cloud's dispatch has before it, in one read: whether messages were
    /// published that subscriptions have not taken in, and when the next push and the
    /// next task are due.
    public func outlook() async throws -> (newMessages: Bool, nextPush: Timestamp?, nextTask: Timestamp?) {
        try await database.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT (SELECT coalesce(max(seq), 0) FROM messages) > (SELECT coalesce(min(last_seq), 0) FROM subscriptions) AS behind,
                      (SELECT min(next_attempt) FROM push_deliveries WHERE state = 'pending') AS next_push,
                      (SELECT min(coalesce(next_attempt, schedule_time)) FROM tasks WHERE state = 'queued') AS next_task
                    """)
            return (
                (row?["behind"] as Bool?) ?? false, (row?["next_push"] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)),
                (row?["next_task"] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:))
            )
        }
    }

    /// What became of a delivery.
    public enum Outcome: Sendable, Equatable {
        case acknowledged
        case retryAt(Timestamp)
        /// Forwarded to the dead-letter topic as this message id.
        case deadLettered(topic: String, messageId: String)
    }

    /// Records a push's answer (`status` nil: no answer within the ack deadline).
    @discardableResult
    public func record(_ due: Due, status: Int?, at now: Timestamp) async throws -> Outcome {
        let subscription = due.subscription
        let attempts = due.previousAttempts + 1
        return try await database.write { db in
            let key: [any DatabaseValueConvertible] = [subscription.name, due.message.sequence]
            if let status, PushAcknowledgement.statuses.contains(status) {
                try db.execute(
                    sql: "UPDATE push_deliveries SET state = 'acked', attempts = ?, last_status = ? WHERE subscription = ? AND seq = ?",
                    arguments: StatementArguments([attempts, status] + key))
                return .acknowledged
            }
            if let topic = subscription.deadLetterTopic, let limit = subscription.maxDeliveryAttempts, attempts >= limit {
                // Pub/Sub forwards with the source's delivery count and names.
                var attributes = due.message.message.attributes
                attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = String(attempts)
                attributes["CloudPubSubDeadLetterSourceSubscription"] = subscription.name
                attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] = LocalCloudNames.project
                attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] = due.message.publishTime.rfc3339
                let id = try SQLitePublisher.append(
                    db, topic: topic,
                    message: OutgoingMessage(
                        data: due.message.message.data, attributes: attributes, orderingKey: due.message.message.orderingKey),
                    at: now)
                try db.execute(
                    sql:
                        "UPDATE push_deliveries SET state = 'dead-lettered', attempts = ?, last_status = ? WHERE subscription = ? AND seq = ?",
                    arguments: StatementArguments([attempts, status] + key))
                return .deadLettered(topic: topic, messageId: String(id))
            }
            let next = now.adding(seconds: subscription.retry.backoff(failedAttempts: attempts))
            try db.execute(
                sql: "UPDATE push_deliveries SET attempts = ?, last_status = ?, next_attempt = ? WHERE subscription = ? AND seq = ?",
                arguments: StatementArguments([attempts, status, next.microsecondsSinceEpoch] + key))
            return .retryAt(next)
        }
    }

    static func subscription(_ row: Row) -> Subscription {
        Subscription(
            name: row["name"], topic: row["topic"], endpoint: row["endpoint"], ackDeadlineSeconds: row["ack_deadline"],
            maxDeliveryAttempts: row["max_delivery_attempts"], deadLetterTopic: row["dead_letter_topic"],
            retry: PushRetryPolicy(minimumBackoffSeconds: row["min_backoff"], maximumBackoffSeconds: row["max_backoff"]))
    }
}

/// The names the local cloud gives its resources (`projects/tollgate-local/…`).
public enum LocalCloudNames {
    public static let project = "tollgate-local"
}
