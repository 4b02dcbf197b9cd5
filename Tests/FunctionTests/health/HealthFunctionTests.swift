import Foundation
import Logging
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import Health

/// health looks at what the other functions leave: each check's status from the state it
/// finds, 503 only when the store itself fails, and the result kept at `health/latest`.
@Suite struct HealthFunctionTests {
    static let now = Timestamp(rfc3339: "2026-03-10T12:00:00Z")!

    func run(_ function: HealthFunction) async throws -> (Int, JSONValue) {
        // What Cloud Scheduler sends.
        let request = FunctionRequest(
            method: "POST", path: "/",
            headers: [
                ("X-CloudScheduler", "true"), ("X-CloudScheduler-JobName", "health"), ("X-CloudScheduler-ScheduleTime", Self.now.rfc3339),
            ],
            body: Data())
        let context = FunctionContext(logger: Logger(label: "health-test"), clock: FixedClock(time: Self.now), request: request)
        let response = try await function.handle(try SchedulerEvent.decode(request), context: context)
        return (response.status, try JSONValue.parse(response.body))
    }

    func set<T: Encodable>(_ store: SQLiteDocumentStore, _ collection: String, _ id: String, _ value: T) async throws {
        try await store.set(try DocumentPath(collection: collection, id: id), try FieldValueEncoder().encode(value))
    }

    @Test func aNewDeployment_isDegradedOnlyForItsMissingExport() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        let (status, body) = try await run(HealthFunction(store: store))
        #expect(status == 200)
        #expect(body["status"] == .string("degraded"))
        #expect(body["checks"]?["store"]?["status"] == .string("ok"))
        #expect(body["checks"]?["export"]?["reason"] == .string("no export is complete yet"))
        #expect(body["checks"]?["deadLetters"]?["count"] == .integer(0))
        #expect(body["checks"]?["quotaResets"]?["status"] == .string("ok"))
        #expect(body["checks"]?["lastStripeEvent"]?["seen"] == .bool(false))
        let kept = try #require(try await store.get(try DocumentPath(HealthFunction.latest))?.decode(HealthFunction.Record.self))
        #expect(kept.status == "degraded" && kept.checks["export"] == "degraded" && kept.checked == Self.now)
    }

    @Test func whatWaitsForAPerson_isNamed_andARecentExportIsOk() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        let completed = Self.now.adding(seconds: -11 * 3_600)
        try await set(
            store, ExportState.collection, "2026-03-09",
            ExportState(
                day: UTCDay("2026-03-09")!, manifest: "m", manifestSHA256: "00", objects: 1, records: 3, accounts: 1, keyId: "k",
                completed: completed))
        try await set(
            store, DeadLetter.collection, "usage-recorder-ab",
            DeadLetter(
                function: "usage-recorder", trigger: "pubsub", reason: "units", body: Data("{}".utf8), metadata: [:],
                received: Self.now.adding(seconds: -3_600)))
        // Ended 40 minutes ago and never rolled over: quota-reset is behind.
        try await set(
            store, QuotaWindow.collection, "acct_late",
            QuotaWindow(start: Self.now.adding(seconds: -86_400), end: Self.now.adding(seconds: -2_400), limit: 10, used: 1))
        try await set(
            store, QuotaWindow.collection, "acct_fresh",
            QuotaWindow(start: Self.now.adding(seconds: -600), end: Self.now.adding(seconds: -300), limit: 10, used: 1))
        try await set(
            store, StripeEventMarker.collection, "evt_1",
            StripeEventMarker(type: "invoice.paid", created: Self.now.secondsSinceEpoch - 7_200, livemode: true, accountId: "acct_1"))
        let (status, body) = try await run(HealthFunction(store: store))
        #expect(status == 200 && body["status"] == .string("degraded"))
        let checks = try #require(body["checks"])
        #expect(checks["export"]?["status"] == .string("ok") && checks["export"]?["day"] == .string("2026-03-09"))
        #expect(checks["export"]?["ageHours"] == .integer(11))
        #expect(checks["deadLetters"]?["status"] == .string("degraded") && checks["deadLetters"]?["count"] == .integer(1))
        #expect(checks["deadLetters"]?["oldestFunction"] == .string("usage-recorder"))
        #expect(checks["quotaResets"]?["status"] == .string("degraded") && checks["quotaResets"]?["account"] == .string("acct_late"))
        #expect(checks["lastStripeEvent"]?["type"] == .string("invoice.paid") && checks["lastStripeEvent"]?["ageHours"] == .integer(2))
    }

    @Test func anExportOlderThan26Hours_isDegraded() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        try await set(
            store, ExportState.collection, "2026-03-08",
            ExportState(
                day: UTCDay("2026-03-08")!, manifest: "m", manifestSHA256: "00", objects: 1, records: 3, accounts: 1, keyId: "k",
                completed: Self.now.adding(seconds: -27 * 3_600)))
        let (_, body) = try await run(HealthFunction(store: store))
        #expect(body["checks"]?["export"]?["status"] == .string("degraded") && body["checks"]?["export"]?["ageHours"] == .integer(27))
    }

    /// The store is the one critical check: when it fails, the answer is 503 and nothing
    /// is written; the other checks, which read it too, are degraded, not failing.
    @Test func aStoreThatFails_is503() async throws {
        let (status, body) = try await run(HealthFunction(store: FailingStore()))
        #expect(status == 503)
        #expect(body["status"] == .string("failing") && body["checks"]?["store"]?["status"] == .string("failing"))
        #expect(body["checks"]?["deadLetters"]?["status"] == .string("degraded"))
    }

    /// A store whose every call fails, as an unreachable Firestore does.
    final class FailingStore: DocumentStore, Sendable {
        func get(_ path: DocumentPath) async throws -> DocumentSnapshot? { throw TollgateError(.unavailable, "store down") }
        func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] { throw TollgateError(.unavailable, "store down") }
        func runTransaction<T: Sendable>(maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T) async throws -> T {
            throw TollgateError(.unavailable, "store down")
        }
        func commitWithResults(_ writes: [Write]) async throws -> CommitResult { throw TollgateError(.unavailable, "store down") }
    }
}
