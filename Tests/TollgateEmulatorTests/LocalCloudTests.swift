import Foundation
import Synchronization
import Testing
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageReport

/// The local cloud's delivery semantics, with every function replaced by a stub that
/// answers as told and records what it was sent.
@Suite struct LocalCloudTests {
    /// Stub functions: each answers `answer(function, request)` and records its requests.
    final class Stubs: Sendable {
        let received = Mutex<[(function: String, request: FunctionRequest, at: Timestamp)]>([])
        let answer: @Sendable (String, FunctionRequest) async -> FunctionResponse?
        let clock: any TollgateModel.Clock

        init(
            clock: any TollgateModel.Clock,
            answer: @escaping @Sendable (String, FunctionRequest) async -> FunctionResponse? = { _, _ in .init(status: 204) }
        ) {
            self.clock = clock
            self.answer = answer
        }

        var targets: [String: LocalCloud.Target] {
            Dictionary(
                uniqueKeysWithValues: EmulatedFunction.declarations.map { declaration in
                    (
                        declaration.name,
                        LocalCloud.Target(declaration: declaration) { request, _ in
                            self.received.withLock { $0.append((declaration.name, request, self.clock.now())) }
                            return await self.answer(declaration.name, request)
                        }
                    )
                })
        }

        func requests(to function: String) -> [(request: FunctionRequest, at: Timestamp)] {
            received.withLock { $0.filter { $0.function == function }.map { ($0.request, $0.at) } }
        }
    }

    static let start = Timestamp(rfc3339: "2026-03-01T00:00:00Z")!

    func makeCloud(_ stubs: (VirtualClock) -> Stubs) async throws -> (LocalCloud, Stubs, VirtualClock, SQLiteDatabase) {
        let clock = VirtualClock(start: Self.start)
        let database = try temporaryDatabase(clock: clock)
        let made = stubs(clock)
        let cloud = LocalCloud(database: database, clock: clock, issuer: try LocalOIDCIssuer(), targets: made.targets) { _ in }
        try await cloud.start()
        return (cloud, made, clock, database)
    }

    static func envelope(_ request: FunctionRequest) throws -> JSONValue { try JSONValue.parse(request.body) }

    @Test func pushNack_isRedeliveredWithExponentialBackoff_thenDeadLetteredAfterMaxDeliveryAttempts() async throws {
        let (cloud, stubs, _, database) = try await makeCloud { clock in
            Stubs(clock: clock) { function, _ in .init(status: function == "usage-recorder" ? 503 : 204) }
        }
        let id = try await cloud.publish(OutgoingMessage(data: Array("{}".utf8), attributes: ["source": "test"]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 3_600)

        let pushes = stubs.requests(to: "usage-recorder")
        #expect(pushes.count == 10, "usage-recorder declares 10 delivery attempts")
        #expect(try pushes.map { try Self.envelope($0.request)["deliveryAttempt"]?.integerValue } == (1...10).map { Int64($0) })
        let gaps = zip(pushes.dropFirst(), pushes).map { $0.at.secondsSinceEpoch - $1.at.secondsSinceEpoch }
        #expect(gaps == [10, 20, 40, 80, 160, 320, 600, 600, 600], "10 s doubling to the 600 s ceiling")

        let letters = try await SQLitePublisher(database).published(topic: "usage-recorder-usage-events-dead-letter")
        let letter = try #require(letters.first)
        #expect(letters.count == 1)
        #expect(letter.message.data == Array("{}".utf8))
        #expect(letter.message.attributes["source"] == "test")
        #expect(letter.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "10")
        #expect(letter.message.attributes["CloudPubSubDeadLetterSourceSubscription"] == "usage-recorder-usage-events")
        #expect(letter.message.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == LocalCloudNames.project)
        #expect(letter.message.attributes["CloudPubSubDeadLetterSourceTopicPublishTime"] == Self.start.rfc3339)
        #expect(try Self.envelope(pushes[0].request)["message"]?["messageId"]?.stringValue == id)
    }

    @Test(arguments: [102, 200, 201, 202, 204])
    func pushAcknowledged_byPubSubsAckCodes(status: Int) async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) { _, _ in .init(status: status) } }
        _ = try await cloud.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 600)
        #expect(stubs.requests(to: "usage-recorder").count == 1)
    }

    @Test(arguments: [203, 205, 302, 400, 429, 500])
    func pushNacked_byAnyOtherStatus(status: Int) async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) { _, _ in .init(status: status) } }
        _ = try await cloud.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 15)
        #expect(stubs.requests(to: "usage-recorder").count == 2, "redelivered after the 10 s minimum backoff")
    }

    @Test func pushWithoutDeadLetterPolicy_hasNoDeliveryAttempt_andIsRetriedPastTenAttempts() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in
            Stubs(clock: clock) { function, _ in .init(status: function == "auth-validator" ? 500 : 204) }
        }
        _ = try await cloud.publish(OutgoingMessage(data: Array("{\"accountId\":\"a\"}".utf8)), to: Topic.entitlementsChanged)
        _ = try await cloud.advance(seconds: 4 * 3_600)
        let pushes = stubs.requests(to: "auth-validator")
        #expect(pushes.count > 10)
        #expect(pushes.allSatisfy { $0.request.path == "/_tollgate/entitlements-changed" })
        #expect(try pushes.allSatisfy { try Self.envelope($0.request)["deliveryAttempt"] == nil })
    }

    @Test func pushes_areInFlightTogether_withoutMessageOrdering_upToTheLocalBound() async throws {
        let inFlight = Mutex((now: 0, most: 0))
        let (cloud, stubs, _, _) = try await makeCloud { clock in
            Stubs(clock: clock) { function, _ in
                guard function == "usage-recorder" else { return .init(status: 204) }
                inFlight.withLock {
                    $0.now += 1
                    $0.most = max($0.most, $0.now)
                }
                // Held until the local bound of outstanding pushes is in flight (or 5 s): a
                // fixed pause let a loaded machine finish early pushes before the last ones
                // were sent.
                let started = ContinuousClock.now
                while inFlight.withLock({ $0.most }) < LocalCloud.outstandingPushes, ContinuousClock.now - started < .seconds(5) {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                inFlight.withLock { $0.now -= 1 }
                return .init(status: 204)
            }
        }
        for index in 0..<40 { _ = try await cloud.publish(OutgoingMessage(data: [UInt8(index)]), to: Topic.usageEvents) }
        _ = try await cloud.advance(seconds: 1)
        #expect(stubs.requests(to: "usage-recorder").count == 40)
        #expect(inFlight.withLock { $0.most } == LocalCloud.outstandingPushes)
    }

    @Test func pushAnsweredAfterTheAckDeadline_isANack() async throws {
        let (cloud, stubs, _, database) = try await makeCloud { clock in
            Stubs(clock: clock) { _, _ in
                try? await Task.sleep(for: .milliseconds(1_200))
                return .init(status: 204)
            }
        }
        try await SQLitePushSubscriptions(database).createOrUpdate(
            .init(name: "usage-recorder-usage-events", topic: Topic.usageEvents, endpoint: "usage-recorder/", ackDeadlineSeconds: 1))
        _ = try await cloud.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 5)
        let state = try await database.stateDump()
        #expect(state["pushDeliveries"]?["usage-recorder-usage-events/1"]?["state"]?.stringValue == "pending")
        #expect(stubs.requests(to: "usage-recorder").count == 1)
    }

    @Test func subscription_receivesOnlyMessagesPublishedAfterItWasCreated() async throws {
        let clock = VirtualClock(start: Self.start)
        let database = try temporaryDatabase(clock: clock)
        let publisher = SQLitePublisher(database)
        try await publisher.createTopic(Topic.usageEvents)
        try await publisher.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        let stubs = Stubs(clock: clock)
        let cloud = LocalCloud(database: database, clock: clock, issuer: try LocalOIDCIssuer(), targets: stubs.targets) { _ in }
        try await cloud.start()
        try await publisher.publish(OutgoingMessage(data: [2]), to: Topic.usageEvents)
        try await cloud.runDue()
        let pushes = stubs.requests(to: "usage-recorder")
        #expect(pushes.count == 1)
        #expect(try Self.envelope(pushes[0].request)["message"]?["data"]?.stringValue == Data([2]).base64EncodedString())
    }

    @Test func schedulerJobs_fireOnTheirCronSchedules_withSchedulerHeaders() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) }
        _ = try await cloud.advance(seconds: 86_400)
        let resets = stubs.requests(to: "quota-reset")
        #expect(resets.count == 144, "every 10 minutes for a day")
        #expect(resets.first?.request.header("X-CloudScheduler-ScheduleTime") == "2026-03-01T00:10:00Z")
        #expect(resets.first?.request.header("X-CloudScheduler-JobName") == "quota-reset")
        #expect(resets.first?.request.header("X-CloudScheduler") == "true")
        #expect(resets.first?.request.header("Authorization")?.hasPrefix("Bearer ") == true)
        #expect(stubs.requests(to: "usage-export").map(\.at.rfc3339) == ["2026-03-01T00:30:00Z"])
        #expect(stubs.requests(to: "cleanup").map(\.at.rfc3339) == ["2026-03-01T03:15:00Z"])
    }

    @Test func trigger_runsAJobNow_andRefusesAnUnknownOne() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) }
        let response = try await cloud.trigger(job: "cleanup")
        #expect(response?.status == 204)
        #expect(stubs.requests(to: "cleanup").first?.request.header("X-CloudScheduler-ScheduleTime") == Self.start.rfc3339)
        await expectCode(.notFound) { try await cloud.trigger(job: "nightly") }
    }

    @Test func task_retriedByItsQueuesRetryConfig_honouringRetryAfterOn503() async throws {
        let answers = Mutex([FunctionResponse(status: 503, headers: ["Retry-After": "120"]), FunctionResponse(status: 500)])
        let (cloud, stubs, _, database) = try await makeCloud { clock in
            Stubs(clock: clock) { _, _ in answers.withLock { $0.isEmpty ? FunctionResponse(status: 200) : $0.removeFirst() } }
        }
        try await SQLiteTaskQueue(database).enqueue(
            HTTPTask(name: "report-1", url: LocalEnvironment.url(of: "usage-report"), body: Array("{}".utf8)), queue: Queue.usageReports)
        _ = try await cloud.advance(seconds: 600)
        let attempts = stubs.requests(to: "usage-report")
        #expect(attempts.map { $0.at.secondsSinceEpoch - Self.start.secondsSinceEpoch } == [0, 120, 140], "Retry-After 120 s, then 20 s")
        #expect(attempts.map { $0.request.header("X-CloudTasks-TaskRetryCount") } == ["0", "1", "2"])
        #expect(attempts.map { $0.request.header("X-CloudTasks-TaskPreviousResponse") } == [nil, "503", "500"])
        #expect(attempts.allSatisfy { $0.request.header("X-CloudTasks-TaskName") == "report-1" })
        #expect(attempts.allSatisfy { $0.request.header("X-CloudTasks-QueueName") == Queue.usageReports })
        #expect(try await database.stateDump()["tasks"]?["usage-reports/report-1"]?["state"]?.stringValue == "succeeded")
    }

    @Test func taskRetries_stopAtMaxAttempts() async throws {
        let (cloud, stubs, _, database) = try await makeCloud { clock in Stubs(clock: clock) { _, _ in FunctionResponse(status: 500) } }
        try await SQLiteTaskQueue(database).enqueue(
            HTTPTask(name: "report-2", url: LocalEnvironment.url(of: "usage-report"), body: []), queue: Queue.usageReports)
        _ = try await cloud.advance(seconds: 86_400)
        #expect(stubs.requests(to: "usage-report").count == 8)
        #expect(try await database.stateDump()["tasks"]?["usage-reports/report-2"]?["state"]?.stringValue == "failed")
    }

    @Test func tasks_areDispatchedTogether_upToTheQueuesMaxConcurrentDispatches() async throws {
        let inFlight = Mutex((now: 0, most: 0))
        let (cloud, stubs, _, database) = try await makeCloud { clock in
            Stubs(clock: clock) { _, _ in
                inFlight.withLock {
                    $0.now += 1
                    $0.most = max($0.most, $0.now)
                }
                // Held until the queue's limit is in flight (or 5 s): a fixed pause let a
                // loaded machine finish early tasks before the last ones were dispatched.
                let started = ContinuousClock.now
                while inFlight.withLock({ $0.most }) < UsageReportFunction.rateLimits.maxConcurrentDispatches,
                    ContinuousClock.now - started < .seconds(5)
                {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                inFlight.withLock { $0.now -= 1 }
                return FunctionResponse(status: 200)
            }
        }
        for index in 0..<30 {
            try await SQLiteTaskQueue(database).enqueue(
                HTTPTask(name: "report-\(index)", url: LocalEnvironment.url(of: "usage-report"), body: []), queue: Queue.usageReports)
        }
        _ = try await cloud.advance(seconds: 1)
        #expect(stubs.requests(to: "usage-report").count == 30)
        #expect(inFlight.withLock { $0.most } == UsageReportFunction.rateLimits.maxConcurrentDispatches)
    }

    @Test func taskRetryConfig_maxRetryDuration_endsRetriesCountedFromTheFirstAttempt() {
        let config = TaskRetryConfig(
            maxAttempts: -1, minBackoffSeconds: 10, maxBackoffSeconds: 300, maxDoublings: 3, maxRetryDurationSeconds: 60)
        let first = Self.start
        #expect(config.nextAttempt(after: 1, status: 500, retryAfter: nil, firstAttempt: first, now: first) == first.adding(seconds: 10))
        #expect(config.nextAttempt(after: 3, status: 500, retryAfter: nil, firstAttempt: first, now: first.adding(seconds: 30)) == nil)
        #expect(config.nextAttempt(after: 1, status: 200, retryAfter: nil, firstAttempt: first, now: first) == nil)
        #expect(config.nextAttempt(after: 1, status: 429, retryAfter: 45, firstAttempt: first, now: first) == first.adding(seconds: 45))
        #expect(config.nextAttempt(after: 1, status: 500, retryAfter: 45, firstAttempt: first, now: first) == first.adding(seconds: 10))
    }

    @Test func outage_failsTheNextDeliveriesWithoutReachingTheFunction() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) }
        try cloud.outage("cleanup", status: 503, deliveries: 2)
        #expect(try await cloud.trigger(job: "cleanup")?.status == 503)
        #expect(try await cloud.trigger(job: "cleanup")?.status == 503)
        #expect(try await cloud.trigger(job: "cleanup")?.status == 204)
        #expect(stubs.requests(to: "cleanup").count == 1)
        #expect(throws: TollgateError.self) { try cloud.outage("nobody", status: 503, deliveries: 1) }
    }
}
