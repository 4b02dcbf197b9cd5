import Foundation
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateEmulator

/// The Pub/Sub push that replay and serve share, driven one delivery at a time as a
/// replay drives it: Pub/Sub's acknowledging statuses, redelivery with backoff, and the
/// dead-letter topic after `maxDeliveryAttempts` (usage-recorder's subscription: 10).
@Suite struct PushDispatchTests {
    @Test func aNackedPush_isRedeliveredWithBackoff_thenDeadLettered_andAnAckEndsIt() async throws {
        let clock = VirtualClock(start: try #require(Timestamp(rfc3339: "2026-01-01T00:00:00Z")))
        let database = try SQLiteDatabase(path: ":memory:", clock: clock)
        try await PushDispatch.declare(in: database)
        let subscriptions = SQLitePushSubscriptions(database)
        let publisher = SQLitePublisher(database)
        try await publisher.publish(OutgoingMessage(data: Array("{}".utf8)), to: Topic.usageEvents)

        var outcomes: [SQLitePushSubscriptions.Outcome] = []
        for _ in 0..<40 where outcomes.last.map({ if case .deadLettered = $0 { false } else { true } }) ?? true {
            let attempts = try await PushDispatch.runDue(subscriptions, clock: clock) { due, function, path in
                #expect(function == "usage-recorder" && path == "/")
                #expect(due.deliveryAttempt == due.previousAttempts + 1, "a dead-letter policy sends deliveryAttempt")
                return FunctionResponse(status: 503)
            }
            outcomes += attempts.map(\.outcome)
            clock.advance(seconds: 600)
        }
        #expect(outcomes.count == 10, "maxDeliveryAttempts")
        guard case .deadLettered(let topic, _) = outcomes.last else {
            Issue.record("not dead-lettered: \(outcomes)")
            return
        }
        #expect(topic == "usage-recorder-usage-events-dead-letter")
        #expect(try await publisher.published(topic: topic).count == 1)

        // A new message answered 204 is acknowledged once, never pushed again.
        try await publisher.publish(OutgoingMessage(data: Array("{}".utf8)), to: Topic.usageEvents)
        let acked = try await PushDispatch.runDue(subscriptions, clock: clock) { _, _, _ in FunctionResponse(status: 204) }
        #expect(acked.map(\.outcome) == [.acknowledged])
        clock.advance(seconds: 3_600)
        #expect(try await PushDispatch.runDue(subscriptions, clock: clock) { _, _, _ in FunctionResponse(status: 204) }.isEmpty)
    }
}
