import Foundation
import Synchronization
import Testing
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
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
                try? await Task.sleep(for: .milliseconds(500))
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
                try? await Task.sleep(for: .milliseconds(500))
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

/// Cloud Scheduler's unix-cron schedules.
@Suite struct CronScheduleTests {
    func next(_ expression: String, zone: String = "Etc/UTC", after: String) throws -> String {
        try CronSchedule(expression, timeZone: zone).next(after: #require(Timestamp(rfc3339: after))).rfc3339
    }

    @Test func everyTenMinutes_runsOnTheNextMultipleOfTen() throws {
        #expect(try next("*/10 * * * *", after: "2026-03-01T00:00:00Z") == "2026-03-01T00:10:00Z")
        #expect(try next("*/10 * * * *", after: "2026-03-01T00:09:59Z") == "2026-03-01T00:10:00Z")
        #expect(try next("*/10 * * * *", after: "2026-03-01T23:55:00Z") == "2026-03-02T00:00:00Z")
    }

    @Test func daily_runsOnceADayAtItsTime() throws {
        #expect(try next("30 0 * * *", after: "2026-03-01T00:30:00Z") == "2026-03-02T00:30:00Z")
        #expect(try next("15 3 * * *", after: "2026-12-31T04:00:00Z") == "2027-01-01T03:15:00Z")
    }

    @Test func dayOfMonthAndDayOfWeek_bothRestricted_runOnEither() throws {
        // 2026-03-01 is a Sunday; the 15th or any Monday.
        #expect(try next("0 9 15 * MON", after: "2026-03-01T10:00:00Z") == "2026-03-02T09:00:00Z")
        #expect(try next("0 9 15 * 1", after: "2026-03-10T10:00:00Z") == "2026-03-15T09:00:00Z")
        #expect(try next("0 0 * * 7", after: "2026-03-02T00:00:00Z") == "2026-03-08T00:00:00Z", "7 is Sunday too")
    }

    @Test func rangesListsStepsAndMonthNames() throws {
        #expect(try next("0 8-18/5 * * *", after: "2026-03-01T08:00:00Z") == "2026-03-01T13:00:00Z")
        #expect(try next("5,35 * * * *", after: "2026-03-01T00:06:00Z") == "2026-03-01T00:35:00Z")
        #expect(try next("0 0 1 JAN,jul *", after: "2026-03-01T00:00:00Z") == "2026-07-01T00:00:00Z")
        #expect(try next("0 0 29 2 *", after: "2026-03-01T00:00:00Z") == "2028-02-29T00:00:00Z")
    }

    @Test func timeZone_placesTheRunInLocalTime_acrossDaylightSaving() throws {
        #expect(try next("0 9 * * *", zone: "America/New_York", after: "2026-03-07T00:00:00Z") == "2026-03-07T14:00:00Z")
        #expect(try next("0 9 * * *", zone: "America/New_York", after: "2026-03-09T00:00:00Z") == "2026-03-09T13:00:00Z")
    }

    @Test(arguments: ["* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "5-1 * * * *", "* * * FOO *", "a b c d e"])
    func malformedSchedules_areRefused(expression: String) {
        #expect(throws: TollgateError.self) { try CronSchedule(expression) }
    }

    @Test func unknownTimeZone_isRefused() {
        #expect(throws: TollgateError.self) { try CronSchedule("* * * * *", timeZone: "Mars/Olympus") }
    }

    @Test func everyDeclaredSchedule_parses() throws {
        for declaration in EmulatedFunction.declarations {
            guard case .scheduler(_, let schedule, let zone) = declaration.trigger else { continue }
            _ = try CronSchedule(schedule, timeZone: zone)
        }
    }
}

extension LocalCloudTests {
    @Test func subscriptionToAFunctionThatNoLongerExists_isNacked_notRetriedInALoop() async throws {
        let (cloud, _, _, database) = try await makeCloud { clock in Stubs(clock: clock) }
        try await SQLitePushSubscriptions(database).createOrUpdate(
            .init(name: "retired-usage-events", topic: Topic.usageEvents, endpoint: "retired-function/"))
        _ = try await cloud.publish(OutgoingMessage(data: [1]), to: Topic.usageEvents)
        _ = try await cloud.advance(seconds: 5)
        let delivery = try await database.stateDump()["pushDeliveries"]?["retired-usage-events/1"]
        #expect(delivery?["lastStatus"]?.integerValue == 404)
        #expect(delivery?["attempts"]?.integerValue == 1, "one attempt, then the 10 s backoff")
    }
}

extension LocalCloudTests {
    @Test func idTokens_areReusedForTheirHour_thenMintedAfresh() async throws {
        let (cloud, stubs, _, _) = try await makeCloud { clock in Stubs(clock: clock) }
        _ = try await cloud.advance(seconds: 2 * 3_600)
        let tokens = stubs.requests(to: "quota-reset").map { $0.request.header("Authorization") ?? "" }
        #expect(tokens.count == 12)
        // Minted at 00:10 and reused until five minutes before it expires: 00:10 to 01:00.
        #expect(Set(tokens.prefix(6)).count == 1, "the runs of the token's first 55 minutes share it")
        #expect(tokens[6] != tokens[5] && Set(tokens.suffix(6)).count == 1, "a new one at 01:10, for the next 55 minutes")
    }

    @Test func functionEnvironment_fillsInTheDeclaredSettingsAndLocalStandIns() throws {
        let keys = try LocalKeys(oidc: sharedIssuer, clerk: sharedIssuer)
        func environment(_ name: String) throws -> [String: String] {
            let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
            return try LocalEnvironment.environment(
                for: declaration, statePath: "/tmp/s.db", keys: keys, stripeBaseURL: "http://127.0.0.1:9")
        }
        let export = try environment("usage-export")
        #expect(export["TOLLGATE_USAGE_REPORT_URL"] == LocalEnvironment.url(of: "usage-report"))
        #expect(export["TOLLGATE_EXPORT_SIGNING_KEY"] == LocalEnvironment.exportSigningKey)
        #expect(export["TOLLGATE_STRIPE_API_BASE"] == nil)
        #expect(try environment("usage-report")["TOLLGATE_STRIPE_API_BASE"] == "http://127.0.0.1:9")
        #expect(try environment("stripe-webhook")["TOLLGATE_PRICE_TIERS"] == LocalEnvironment.priceTiers)
        #expect(try environment("usage-recorder")["TOLLGATE_AUDIENCE"] == LocalEnvironment.url(of: "usage-recorder"))
        #expect(try environment("usage-recorder")["TOLLGATE_STORE"] == "sqlite:///tmp/s.db")
        #expect(try environment("usage-export")["TOLLGATE_EXPORT_PART_RECORDS"] == "5", "a replay's small parts, as a setting")
    }
}
