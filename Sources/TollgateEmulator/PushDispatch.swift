import Foundation
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// Pub/Sub push over the SQLite subscriptions, shared by the replayer and the local cloud:
/// each message published to a topic is pushed to every subscription of it created
/// before the message; an answer outside Pub/Sub's acknowledging statuses (or none within
/// the ack deadline) is a nack, redelivered with the subscription's backoff and forwarded
/// to its dead-letter topic after `maxDeliveryAttempts`.
enum PushDispatch {
    struct Attempt: Sendable {
        var due: SQLitePushSubscriptions.Due
        var function: String
        var path: String
        /// nil: no answer within the ack deadline.
        var status: Int?
        var outcome: SQLitePushSubscriptions.Outcome
    }

    /// The subscription name the local cloud gives a function's push subscription.
    static func subscriptionName(_ function: String, _ topic: String) -> String { "\(function)-\(topic)" }
    static func deadLetterTopic(_ subscription: String) -> String { "\(subscription)-dead-letter" }

    /// The push subscriptions the functions declare: their Pub/Sub trigger (at `/`, with
    /// a dead-letter topic after `maxDeliveryAttempts`) and their extra subscriptions.
    static func declaredSubscriptions() -> [SQLitePushSubscriptions.Subscription] {
        EmulatedFunction.declarations.flatMap { declaration -> [SQLitePushSubscriptions.Subscription] in
            var made: [SQLitePushSubscriptions.Subscription] = []
            if case .pubSub(let topic, let attempts, let deadline) = declaration.trigger {
                let name = subscriptionName(declaration.name, topic)
                made.append(
                    .init(
                        name: name, topic: topic, endpoint: declaration.name + "/", ackDeadlineSeconds: deadline,
                        maxDeliveryAttempts: attempts, deadLetterTopic: deadLetterTopic(name)))
            }
            for extra in declaration.subscriptions {
                made.append(
                    .init(
                        name: subscriptionName(declaration.name, extra.topic), topic: extra.topic, endpoint: declaration.name + extra.path))
            }
            return made
        }
    }

    /// Creates every topic the functions touch, the dead-letter topics and the declared
    /// subscriptions, as Terraform does in the cloud.
    static func declare(in database: SQLiteDatabase) async throws {
        let publisher = SQLitePublisher(database)
        let declared = declaredSubscriptions()
        for topic in EmulatedFunction.declarations.topics + declared.compactMap(\.deadLetterTopic) {
            try await publisher.createTopic(topic)
        }
        let subscriptions = SQLitePushSubscriptions(database)
        for subscription in declared { try await subscriptions.createOrUpdate(subscription) }
    }

    /// The function a subscription pushes to, and the path it pushes at.
    static func route(_ subscription: SQLitePushSubscriptions.Subscription) -> (function: String, path: String) {
        let parts = subscription.endpoint.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), "/" + (parts.count > 1 ? String(parts[1]) : ""))
    }

    /// Pushes every delivery due at `clock.now()` once, one after another, and records
    /// each answer (replays: the order of effects stays the fixture's). `deliver` gets the
    /// delivery with the function and path it is pushed to, and answers nil when no answer
    /// came within the ack deadline.
    static func runDue(
        _ subscriptions: SQLitePushSubscriptions, clock: any TollgateModel.Clock, isolation: isolated (any Actor)? = #isolation,
        deliver: (SQLitePushSubscriptions.Due, _ function: String, _ path: String) async throws -> FunctionResponse?
    ) async throws -> [Attempt] {
        // One read first: most steps of a replay publish nothing, and taking in new
        // messages is a write transaction.
        let outlook = try await subscriptions.outlook()
        guard outlook.newMessages || outlook.nextPush.map({ $0 <= clock.now() }) == true else { return [] }
        var attempts: [Attempt] = []
        for due in try await subscriptions.due(at: clock.now()) {
            attempts.append(try await push(due, subscriptions, clock: clock, deliver: deliver))
        }
        return attempts
    }

    /// Pushes the deliveries, up to `width` in flight at once: Pub/Sub pushes without
    /// waiting for earlier answers (the subscriptions do not enable message ordering), so
    /// handlers meet concurrency as in the cloud (the local cloud).
    static func runConcurrently(
        _ deliveries: [SQLitePushSubscriptions.Due], _ subscriptions: SQLitePushSubscriptions, clock: any TollgateModel.Clock,
        width: Int,
        deliver: @escaping @Sendable (SQLitePushSubscriptions.Due, _ function: String, _ path: String) async throws -> FunctionResponse?
    ) async throws -> [Attempt] {
        try await concurrently(deliveries, atMost: width) { due in try await push(due, subscriptions, clock: clock, deliver: deliver) }
    }

    private static func push(
        _ due: SQLitePushSubscriptions.Due, _ subscriptions: SQLitePushSubscriptions, clock: any TollgateModel.Clock,
        isolation: isolated (any Actor)? = #isolation,
        deliver: (SQLitePushSubscriptions.Due, _ function: String, _ path: String) async throws -> FunctionResponse?
    ) async throws -> Attempt {
        let (function, path) = route(due.subscription)
        let status = try await deliver(due, function, path)?.status
        let outcome = try await subscriptions.record(due, status: status, at: clock.now())
        return Attempt(due: due, function: function, path: path, status: status, outcome: outcome)
    }
}
