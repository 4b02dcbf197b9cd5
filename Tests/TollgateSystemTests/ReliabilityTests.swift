import Foundation
import GRDB
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateStripe
import TollgateTestSupport
import TollgateTesting
import UsageReport

@testable import TollgateSQLite

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Several real processes of a state-changing function on one store, deliveries doubled
/// and raced, processes killed with SIGKILL under load and restarted: afterwards the
/// state holds each effect exactly once (the invariants are computed from the input, so
/// they are what a clean run leaves).
@Suite(.serialized) struct ReliabilityTests {
    /// One SQLite state and a JWKS file the executables trust for OIDC.
    struct Cluster {
        let directory: URL
        let database: SQLiteDatabase
        let jwks: URL

        init() throws {
            directory = scratchURL("reliability")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            database = try SQLiteDatabase(path: directory.appendingPathComponent("state.db").path)
            jwks = directory.appendingPathComponent("jwks.json")
            try Data(sharedIssuer.jwksDocument.rendered().utf8).write(to: jwks)
        }

        /// Documents in `collection` (written after `since`, in microseconds, when given), read
        /// from the state file: a process's progress, seen from outside it.
        func count(_ collection: String, writtenAfter since: Int64 = .min) async throws -> Int {
            try await database.read { db in
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM documents WHERE collection = ? AND update_time > ?", arguments: [collection, since]) ?? 0
            }
        }

        /// Polls `progress` until it passes `than`; returns what it read.
        func waitForProgress(past than: Int, _ progress: () async throws -> Int) async throws -> Int {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                let now = try await progress()
                if now > than { return now }
                try await Task.sleep(for: .milliseconds(1))
            }
            Issue.record("no progress past \(than) in 60 s")
            return than
        }

        func environment(_ audience: String, _ extra: [String: String] = [:]) -> [String: String] {
            extra.merging([
                "TOLLGATE_STORE": "sqlite://\(database.path)", "TOLLGATE_AUDIENCE": audience,
                "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
                "TOLLGATE_OIDC_ISSUERS": LocalOIDCIssuer.issuer, "TOLLGATE_OIDC_JWKS": jwks.absoluteString,
            ]) { given, _ in given }
        }
    }

    static let recorderAudience = "https://usage-recorder.test"

    static func bearer(_ audience: String) throws -> String {
        "Bearer " + (try sharedIssuer.token(audience: audience, issuedAt: Timestamp(Date())))
    }

    /// A run of `job` now, as Cloud Scheduler sends it to the service at `audience`.
    static func jobHeaders(_ job: String, audience: String) throws -> [String: String] {
        CloudSchedulerRequest(jobName: job, scheduleTime: Timestamp(Date())).headers
            .merging(["Authorization": try bearer(audience)]) { given, _ in given }
    }

    // MARK: usage-recorder

    /// Usage events whose request ids overlap across messages: a repeated id always
    /// carries the same content, as a redelivered event does.
    static func usageMessages(count: Int, eventsPerMessage: Int, distinctIDs: Int, seed: UInt64) -> [[JSONValue]] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            (0..<eventsPerMessage).map { _ in
                let id = Int(random.next() % UInt64(distinctIDs))
                return .object([
                    "requestId": .string("req_\(id)"), "accountId": .string("acct_\(id % 5)"), "time": .string("2026-01-15T10:00:00Z"),
                    "endpoint": .string("/v1/graphs"), "units": .integer(Int64(id % 7 + 1)),
                ])
            }
        }
    }

    static func pushBody(_ events: [JSONValue], messageID: Int) -> Data {
        let data = Data(JSONValue.array(events).rendered().utf8).base64EncodedString()
        return Data(
            #"{"message":{"data":"\#(data)","messageId":"\#(messageID)","publishTime":"2026-01-15T10:00:01Z"},"subscription":"projects/p/subscriptions/usage-recorder"}"#
                .utf8)
    }

    /// What a clean run leaves: each distinct request once, counted once.
    static func checkUsageInvariants(_ messages: [[JSONValue]], _ store: SQLiteDocumentStore) async throws {
        var distinct: [String: JSONValue] = [:]
        for event in messages.flatMap({ $0 }) { distinct[event["requestId"]!.stringValue!] = event }
        let ledger = try await store.query(DocumentQuery(collection: UsageRecord.collection))
        #expect(ledger.count == distinct.count, "ledger count = distinct request ids")
        for account in 0..<5 {
            let mine = distinct.values.filter { $0["accountId"]?.stringValue == "acct_\(account)" }
            let counters = try await store.get(path("\(UsageCounters.collection)/acct_\(account)"))
            #expect(counters?.fields["requests"] == .integer(Int64(mine.count)), "no lost or doubled counter update")
            #expect(counters?.fields["units"] == .integer(mine.reduce(0) { $0 + ($1["units"]?.integerValue ?? 0) }))
        }
    }

    /// Delivers `body` as Pub/Sub does: again (to whichever instance is up) until a 2xx.
    static func deliver(_ body: Data, to url: @Sendable () -> URL, audience: String, failures: Counter? = nil) async throws {
        for attempt in 0..<400 {
            if attempt > 0 { _ = failures?.next() }
            let answer = try? await post(
                url(), body: body, headers: ["Authorization": try bearer(audience), "Content-Type": "application/json"])
            if let (status, _) = answer, (200..<300).contains(status) { return }
            try await Task.sleep(for: .milliseconds(attempt < 10 ? 20 : 100))
        }
        Issue.record("a message was never acknowledged")
    }

    @Test func usageRecorder_threeProcesses_racingDuplicates_recordEachRequestOnce() async throws {
        let cluster = try Cluster()
        var recorders: [RunningFunction] = []
        for _ in 0..<3 {
            recorders.append(try await RunningFunction("usage-recorder", environment: cluster.environment(Self.recorderAudience)))
        }
        let urls = recorders.map(\.url)
        let messages = Self.usageMessages(count: 240, eventsPerMessage: 3, distinctIDs: 400, seed: 11)
        // Each message twice, to two different processes at once: a redelivery racing the first.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for index in stride(from: worker, to: messages.count, by: 16) {
                        let body = Self.pushBody(messages[index], messageID: index)
                        async let first: Void = Self.deliver(body, to: { urls[index % 3] }, audience: Self.recorderAudience)
                        async let second: Void = Self.deliver(body, to: { urls[(index + 1) % 3] }, audience: Self.recorderAudience)
                        _ = try await (first, second)
                    }
                }
            }
            try await group.waitForAll()
        }
        try await Self.checkUsageInvariants(messages, SQLiteDocumentStore(cluster.database))
        // The deployed executable serves its metrics on its loopback metrics port: every
        // delivery counted. The public port serves none.
        var scraped = 0.0
        for recorder in recorders {
            let (_, publicAnswer) = try await URLSession.shared.data(from: recorder.url.appendingPathComponent("metrics"))
            #expect((publicAnswer as? HTTPURLResponse)?.statusCode == 405, "usage-recorder answers only Pub/Sub's POST there")
            let (data, response) = try await URLSession.shared.data(from: try recorder.metricsURL)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
            let series = String(decoding: data, as: UTF8.self).split(separator: "\n")
                .filter { $0.hasPrefix(#"tollgate_requests_total{function="usage-recorder",trigger="pubsub",outcome="ok"}"#) }
            scraped += series.compactMap { Double($0.split(separator: " ").last!) }.reduce(0, +)
        }
        #expect(scraped >= Double(messages.count * 2), "each of the doubled deliveries was counted where it landed")
        for recorder in recorders { #expect(try await recorder.stop() == 0) }
    }

    @Test func usageRecorder_killedUnderLoadThreeTimes_andRestarted_losesAndDoublesNothing() async throws {
        let cluster = try Cluster()
        let environment = cluster.environment(Self.recorderAudience)
        let current = CurrentInstance(try await RunningFunction("usage-recorder", environment: environment))
        let messages = Self.usageMessages(count: 300, eventsPerMessage: 4, distinctIDs: 700, seed: 23)
        let (failures, delivered) = (Counter(), Counter())
        let sending = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in stride(from: worker, to: messages.count, by: 8) {
                            try await Self.deliver(
                                Self.pushBody(messages[index], messageID: index), to: { current.url },
                                audience: Self.recorderAudience, failures: failures)
                            _ = delivered.next()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await current.killAndRestart(
            "usage-recorder", environment: environment, times: 3, seed: 5, points: 30..<210
        ) { delivered.count }
        try await sending.value
        #expect(failures.next() > 0, "the kills cut deliveries off mid-load")
        try await Self.checkUsageInvariants(messages, SQLiteDocumentStore(cluster.database))
        #expect(try await current.instance.stop() == 0)
    }

    // MARK: stripe-webhook

    static let webhookSecret = "whsec_reliability_test_secret"

    /// Three events per account, in Stripe's order: created (pro), updated (enterprise),
    /// updated again (pro for even accounts, enterprise for odd).
    static func stripeEvents(accounts: Int) throws -> [(id: String, body: Data, account: Int, finalTier: String)] {
        let template = try JSONValue.parse(
            try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-pro.json")))
        var events: [(String, Data, Int, String)] = []
        for account in 0..<accounts {
            let prices = [
                "price_pro_monthly", "price_enterprise_monthly", account % 2 == 0 ? "price_pro_monthly" : "price_enterprise_monthly",
            ]
            for (step, price) in prices.enumerated() {
                let id = "evt_rel_\(account)_\(step)"
                var text = template.rendered()
                text = text.replacingOccurrences(of: "evt_1TgSubCreatedPro", with: id)
                    .replacingOccurrences(of: "cus_TgAlpha01", with: "cus_rel_\(account)")
                    .replacingOccurrences(of: "sub_1TgAlpha01", with: "sub_rel_\(account)")
                    .replacingOccurrences(of: "\"price_pro_monthly\"", with: "\"\(price)\"")
                if step > 0 { text = text.replacingOccurrences(of: "customer.subscription.created", with: "customer.subscription.updated") }
                // Stripe's created is in seconds; the steps are ten seconds apart.
                text = text.replacingOccurrences(
                    of: #""created":1767225600,"data""#, with: #""created":\#(1_767_225_600 + step * 10),"data""#)
                events.append((id, Data(text.utf8), account, account % 2 == 0 ? "pro" : "enterprise"))
            }
        }
        return events
    }

    static func deliverSigned(_ body: Data, to url: @Sendable () -> URL, failures: Counter? = nil) async throws {
        for attempt in 0..<400 {
            if attempt > 0 { _ = failures?.next() }
            let header = StripeSignatureHeader.make(secret: webhookSecret, body: body)
            let answer = try? await post(url(), body: body, headers: ["Stripe-Signature": header, "Content-Type": "application/json"])
            if let (status, _) = answer, (200..<300).contains(status) { return }
            try await Task.sleep(for: .milliseconds(attempt < 10 ? 20 : 100))
        }
        Issue.record("a Stripe event was never acknowledged")
    }

    static func checkStripeInvariants(_ events: [(id: String, body: Data, account: Int, finalTier: String)], _ store: SQLiteDocumentStore)
        async throws
    {
        let markers = try await store.query(DocumentQuery(collection: "stripeEvents"))
        #expect(markers.count == events.count, "one marker per event")
        for account in Set(events.map(\.account)) {
            let expected = events.first { $0.account == account }!.finalTier
            let document = try await store.get(path("accounts/cus_rel_\(account)"))
            #expect(document?.fields["tier"] == .string(expected), "acct \(account): the newest event wins, whatever the arrival order")
        }
    }

    @Test func stripeWebhook_threeProcesses_everyEventTwiceShuffled_appliesEachOnce_inStripesOrder() async throws {
        let cluster = try Cluster()
        let environment = cluster.environment(
            "https://stripe-webhook.test",
            [
                "STRIPE_WEBHOOK_SECRET": Self.webhookSecret, "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
                "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
            ])
        var webhooks: [RunningFunction] = []
        for _ in 0..<3 { webhooks.append(try await RunningFunction("stripe-webhook", environment: environment)) }
        let urls = webhooks.map(\.url)
        let events = try Self.stripeEvents(accounts: 30)
        var random = SeededGenerator(seed: 3)
        var deliveries = (events + events).map { $0.body }
        for index in deliveries.indices.reversed() { deliveries.swapAt(index, Int(random.next() % UInt64(index + 1))) }
        let shuffled = deliveries
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<12 {
                group.addTask {
                    for index in stride(from: worker, to: shuffled.count, by: 12) {
                        try await Self.deliverSigned(shuffled[index], to: { urls[index % 3] })
                    }
                }
            }
            try await group.waitForAll()
        }
        try await Self.checkStripeInvariants(events, SQLiteDocumentStore(cluster.database))
        for webhook in webhooks { #expect(try await webhook.stop() == 0) }
    }

    @Test func stripeWebhook_killedUnderLoad_andRestarted_appliesEachEventOnce() async throws {
        let cluster = try Cluster()
        let environment = cluster.environment(
            "https://stripe-webhook.test",
            [
                "STRIPE_WEBHOOK_SECRET": Self.webhookSecret, "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
                "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
            ])
        let current = CurrentInstance(try await RunningFunction("stripe-webhook", environment: environment))
        let events = try Self.stripeEvents(accounts: 100)
        let (failures, delivered) = (Counter(), Counter())
        let sending = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in stride(from: worker, to: events.count, by: 8) {
                            try await Self.deliverSigned(events[index].body, to: { current.url }, failures: failures)
                            _ = delivered.next()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await current.killAndRestart(
            "stripe-webhook", environment: environment, times: 2, seed: 9, points: 30..<210
        ) { delivered.count }
        try await sending.value
        #expect(failures.next() > 0, "the kills cut deliveries off mid-load")
        // A delivery acknowledged before a kill is not redelivered; one cut off is. Stripe
        // also redelivers what was acknowledged late, so send everything once more.
        for event in events { try await Self.deliverSigned(event.body, to: { current.url }) }
        try await Self.checkStripeInvariants(events, SQLiteDocumentStore(cluster.database))
        #expect(try await current.instance.stop() == 0)
    }

    // MARK: auth-validator

    @Test func authValidator_killedUnderLoad_neverAdmitsPastTheLimit_andCountsWhatItAdmitted() async throws {
        let cluster = try Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let pepper = "pepper-for-the-crash-test-0123456789abcdef"
        let key = try await seedKeyedAccount(store, id: "acct_crash", units: 600, pepper: pepper)
        let environment = ["TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "TOLLGATE_KEY_PEPPER": pepper]
        let current = CurrentInstance(try await RunningFunction("auth-validator", environment: environment))
        let (admitted, unanswered, sent) = (Counter(), Counter(), Counter())
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for _ in stride(from: worker, to: 900, by: 8) {
                            _ = sent.next()
                            // A request whose answer was lost may have been counted: the gateway does not retry it.
                            guard let (status, _) = try? await post(current.url, body: Data(), headers: ["X-API-Key": key]) else {
                                _ = unanswered.next()
                                continue
                            }
                            if status == 200 { _ = admitted.next() }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await current.killAndRestart(
            "auth-validator", environment: environment, times: 2, seed: 29, points: 100..<600
        ) { sent.count }
        try await load.value
        // SIGTERM: the live instance returns its lease; the killed ones' stay in the window.
        #expect(try await current.instance.stop() == 0)
        let window = try #require(try await store.get(path("quotas/acct_crash"))?.decode(QuotaWindow.self))
        let orphaned = (window.leases ?? [:]).values.reduce(0) { $0 + $1.granted }
        let (seen, lost) = (Int64(admitted.next()), Int64(unanswered.next()))
        #expect(lost > 0, "the kills cut requests off")
        #expect(window.used <= 600, "never past the limit")
        #expect(
            window.used >= seen && window.used <= seen + lost + orphaned,
            "every admitted request counted; besides, at most the unanswered ones and what the killed instances held")
    }

    // MARK: usage-report

    @Test func usageReport_killedUnderLoad_andRedelivered_reportsEachDayOnceToStripe() async throws {
        let cluster = try Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let accounts = 120
        for index in 0..<accounts { try await seedBilledAccount(store, index: index) }
        let stripeState = try SQLiteDatabase(path: cluster.directory.appendingPathComponent("stripe.db").path)
        let stripe = StripeFakeServer(stripeState)
        let stripeURL = try await stripe.start(logger: Logger(label: "fake") { _ in SwiftLogNoOpLogHandler() })
        defer { stripe.stop() }
        let audience = "https://usage-report.test"
        let environment = cluster.environment(audience, ["STRIPE_API_KEY": StripeFakeServer.apiKey, "TOLLGATE_STRIPE_API_BASE": stripeURL])
        let current = CurrentInstance(try await RunningFunction("usage-report", environment: environment))
        // Two days ago: over, and within the 35 days Stripe accepts meter events for.
        let day = UTCDay(containing: SystemClock().now()).previous.previous
        let (failures, reported) = (Counter(), Counter())
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in stride(from: worker, to: accounts, by: 8) {
                            let body = Data(#"{"day":"\#(day)","accountId":"acct_\#(index)","units":\#(index + 1)}"#.utf8)
                            // Cloud Tasks counts an attempt per dispatch, minutes apart; here a
                            // dispatch that found no instance (killed, restarting) is not counted.
                            var dispatched = 0
                            for attempt in 0..<400 {
                                let headers = CloudTasksRequest(
                                    queueName: Queue.usageReports, taskName: "report-\(index)", retryCount: dispatched,
                                    executionCount: dispatched, eta: 0
                                ).headers.merging(["Authorization": try Self.bearer(audience), "Content-Type": "application/json"]) {
                                    given, _ in given
                                }
                                let answer = try? await post(current.url, body: body, headers: headers)
                                if let (status, _) = answer, status == 200 {
                                    _ = reported.next()
                                    break
                                }
                                if answer != nil { dispatched += 1 }
                                _ = failures.next()
                                try await Task.sleep(for: .milliseconds(attempt < 10 ? 20 : 100))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await current.killAndRestart(
            "usage-report", environment: environment, times: 2, seed: 31, points: 12..<84
        ) { reported.count }
        try await load.value
        #expect(failures.next() > 0, "the kills cut deliveries off mid-load")
        let events = try #require(try await stripeState.stateDump()["stripeMeterEvents"]?.objectValue)
        let deadLetters = try await store.query(DocumentQuery(collection: "deadLetters"))
        #expect(deadLetters.isEmpty, "\(deadLetters.map { $0.fields["reason"] ?? .null })")
        #expect(events.count == accounts, "one meter event per account and day, however often a task ran")
        for index in 0..<accounts {
            let identifier = UsageReportFunction.identifier(accountId: "acct_\(index)", eventName: "api_units", day: day)
            #expect(events[identifier]?["value"] == .string(String(index + 1)))
        }
        let reports = try await store.query(DocumentQuery(collection: UsageReport.collection))
        #expect(reports.count == accounts && reports.allSatisfy { $0.fields["status"] == .string("reported") })
        #expect(try await current.instance.stop() == 0)
    }

    // MARK: cleanup

    @Test func cleanup_killedMidRun_andRunAgain_deletesExactlyTheExpiredVerifiedLedger() async throws {
        let cluster = try Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let old = UTCDay("2026-01-01")!
        try await seedLedger(store, day: old, count: 3_000, accounts: 4)
        // A recent day, not exported: cleanup must leave every one of its entries.
        let recent = UTCDay(containing: SystemClock().now()).previous
        try await seedLedger(store, day: recent, count: 200, accounts: 2)
        let storeURL = ["TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "PATH": "/usr/bin:/bin"]
        #expect(try await runTollgate(["export", "run", "--date", "2026-01-01"], environment: storeURL).0 == 0)
        let audience = "https://cleanup.test"
        let environment = cluster.environment(audience, ["TOLLGATE_RETENTION_LEDGER_DAYS": "30"])
        func trigger(_ instance: RunningFunction) async throws -> Int {
            (try? await post(instance.url, body: Data(), headers: try Self.jobHeaders("cleanup", audience: audience)))?.0 ?? 0
        }
        // Each run is killed once it has deleted another page (a commit) of the old day.
        let total = 3_200
        var deleted = 0
        var cutMidDay = 0
        for _ in 0..<2 {
            let instance = try await RunningFunction("cleanup", environment: environment)
            let run = Task { try await trigger(instance) }
            deleted = try await cluster.waitForProgress(past: deleted) { total - (try await cluster.count(UsageRecord.collection)) }
            instance.kill()
            if try await run.value != 200 && deleted < 3_000 { cutMidDay += 1 }
        }
        #expect(cutMidDay > 0, "a run was cut off with part of the day deleted")
        let last = try await RunningFunction("cleanup", environment: environment)
        #expect(try await trigger(last) == 200)
        #expect(try await store.query(UsageRecord.recorded(during: old)).isEmpty, "the expired, exported, verified day is gone")
        #expect(try await store.query(UsageRecord.recorded(during: recent)).count == 200, "nothing else was touched")
        let state = try #require(try await store.get(path("exports/2026-01-01"))?.decode(ExportState.self))
        #expect(state.ledgerDeleted != nil)
        // The export itself still verifies: cleanup removed the ledger, not the evidence.
        let (verified, output, _) = try await runTollgate(
            ["verify-export", "--from", "2026-01-01", "--to", "2026-01-01"], environment: storeURL)
        #expect(verified == 0, "\(output)")
        #expect(try await last.stop() == 0)
    }

    // MARK: quota-reset

    @Test func quotaReset_killedMidRun_andRunAgain_rollsEveryEndedWindowOnce() async throws {
        let cluster = try Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let lastMonth = Timestamp(Date()).adding(seconds: -40 * 86_400)
        var writes: [Write] = []
        for index in 0..<1_500 {
            let window = QuotaWindow(start: lastMonth, end: lastMonth.adding(seconds: 86_400), limit: 1_000, used: 5)
            writes.append(
                .set(try DocumentPath(collection: QuotaWindow.collection, id: "acct_\(index)"), try FieldValueEncoder().encode(window)))
            if writes.count == 500 {
                try await store.commit(writes)
                writes = []
            }
        }
        let audience = "https://quota-reset.test"
        let environment = cluster.environment(audience)
        func trigger(_ instance: RunningFunction) async throws -> (Int, JSONValue?) {
            let headers = try Self.jobHeaders("quota-reset", audience: audience)
            guard let (status, body) = try? await post(instance.url, body: Data(), headers: headers) else { return (0, nil) }
            return (status, try? JSONValue.parse(body))
        }
        // Each run is killed once it has rolled another page (a commit) of windows.
        let seeded = try await cluster.database.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(update_time) FROM documents WHERE collection = ?", arguments: [QuotaWindow.collection])
        }
        var rolled = 0
        var cutMidWay = 0
        for _ in 0..<2 {
            let instance = try await RunningFunction("quota-reset", environment: environment)
            let run = Task { try await trigger(instance) }
            rolled = try await cluster.waitForProgress(past: rolled) {
                try await cluster.count(QuotaWindow.collection, writtenAfter: seeded ?? 0)
            }
            instance.kill()
            if try await run.value.0 != 200 && rolled < 1_500 { cutMidWay += 1 }
        }
        #expect(cutMidWay > 0, "a run was cut off with part of the windows rolled")
        let last = try await RunningFunction("quota-reset", environment: environment)
        var complete = false
        for _ in 0..<20 where !complete {
            let (status, answer) = try await trigger(last)
            complete = status == 200 && answer?["complete"] == .bool(true)
        }
        #expect(complete)
        let windows = try await store.query(DocumentQuery(collection: QuotaWindow.collection))
        #expect(windows.count == 1_500)
        let now = Timestamp(Date())
        for snapshot in windows {
            let window = try snapshot.decode(QuotaWindow.self)
            #expect(window.used == 0 && window.start <= now && now < window.end, "\(snapshot.path): rolled once, into the current window")
        }
        #expect(try await last.stop() == 0)
    }
}

/// A `Stripe-Signature` header for now, as Stripe signs.
enum StripeSignatureHeader {
    static func make(secret: String, body: Data) -> String {
        StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
    }
}

/// The one running instance a sender targets; replaced when the test restarts it.
final class CurrentInstance: Sendable {
    private let value: Mutex<RunningFunction>
    init(_ instance: RunningFunction) { value = Mutex(instance) }
    var instance: RunningFunction { value.withLock { $0 } }
    var url: URL { value.withLock { $0.url } }

    /// `times` times: once the load's `progress()` reaches a seeded random point in `points`,
    /// kills the instance with SIGKILL and starts a new one on the same state. Progress, not
    /// time, picks the moments, so the kills land mid-load on an idle machine and a busy one.
    func killAndRestart(
        _ product: String, environment: [String: String], times: Int, seed: UInt64, points: Range<Int>,
        progress: @Sendable () -> Int
    ) async throws {
        var random = SeededGenerator(seed: seed)
        let kills = (0..<times).map { _ in points.lowerBound + Int(random.next() % UInt64(points.count)) }.sorted()
        for point in kills {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(120)
            while progress() < point {
                guard clock.now < deadline else {
                    Issue.record("the load stalled at \(progress()) before \(point)")
                    return
                }
                try await Task.sleep(for: .milliseconds(1))
            }
            instance.kill()
            let restarted = try await RunningFunction(product, environment: environment)
            value.withLock { $0 = restarted }
        }
    }
}
