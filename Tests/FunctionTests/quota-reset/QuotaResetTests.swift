import Foundation
import Logging
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import QuotaReset

/// quota-reset rolls each ended window exactly once, to the window containing now, at the
/// limit of the account's entitlements; windows still running and a second run are left
/// alone.
@Suite struct QuotaResetTests {
    static func at(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }

    func run(_ function: QuotaResetFunction, at now: Timestamp) async throws -> JSONValue {
        // What Cloud Scheduler sends.
        let request = FunctionRequest(
            method: "POST", path: "/",
            headers: [
                ("X-CloudScheduler", "true"), ("X-CloudScheduler-JobName", "quota-reset"), ("X-CloudScheduler-ScheduleTime", now.rfc3339),
            ], body: Data())
        let context = FunctionContext(logger: Logger(label: "quota-reset-test"), clock: FixedClock(time: now), request: request)
        let event = try SchedulerEvent.decode(request)
        let response = try await function.handle(event, context: context)
        #expect(response.status == 200)
        return try JSONValue.parse(response.body)
    }

    @Test func endedWindows_rollOnce_toTheWindowContainingNow_atTheAccountsLimit() async throws {
        let database = try temporaryDatabase()
        let store = SQLiteDocumentStore(database)
        func window(_ id: String, start: String, end: String, used: Int64) async throws {
            try await store.set(
                try DocumentPath(collection: QuotaWindow.collection, id: id),
                try FieldValueEncoder().encode(QuotaWindow(start: Self.at(start), end: Self.at(end), limit: 10_000, used: used)))
        }
        try await store.set(
            try DocumentPath(collection: Account.collection, id: "acct_pro"),
            try FieldValueEncoder().encode(Account(id: "acct_pro", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro))))
        // Ended a month ago: idle months are skipped, not replayed.
        try await window("acct_pro", start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z", used: 9_000)
        // No account document (deleted): the free tier's limit.
        try await window("acct_gone", start: "2026-02-01T00:00:00Z", end: "2026-03-01T00:00:00Z", used: 10)
        // Still running at now.
        try await window("acct_running", start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", used: 5)
        let function = QuotaResetFunction(store: store, period: .month, pageSize: 1)

        let now = Self.at("2026-03-15T10:00:00Z")
        #expect(try await run(function, at: now) == .object(["rolled": .integer(2), "skipped": .integer(0), "complete": .bool(true)]))
        let march = QuotaWindow(start: Self.at("2026-03-01T00:00:00Z"), end: Self.at("2026-04-01T00:00:00Z"), limit: 15_000, used: 0)
        func stored(_ id: String) async throws -> QuotaWindow? {
            try await store.get(try DocumentPath(collection: QuotaWindow.collection, id: id))?.decode(QuotaWindow.self)
        }
        #expect(try await stored("acct_pro") == march)
        #expect(try await stored("acct_gone") == QuotaWindow(start: march.start, end: march.end, limit: 10_000, used: 0))
        #expect(try await stored("acct_running")?.used == 5)
        // A second run, or one that overlapped the first, finds nothing ended.
        #expect(try await run(function, at: now) == .object(["rolled": .integer(0), "skipped": .integer(0), "complete": .bool(true)]))
        // A window rolled by a request meanwhile (it is no longer the ended one) is skipped.
        #expect(try await function.roll(try DocumentPath(collection: QuotaWindow.collection, id: "acct_pro"), now: now) == false)
    }
}
