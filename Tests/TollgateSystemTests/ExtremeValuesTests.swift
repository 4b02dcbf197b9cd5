import Foundation
import Logging
import Testing
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator
@testable import UsageReport

/// Every numeric and time field of every payload a sender can send, replaced in turn by
/// each value of a table of extremes, delivered signed through the function's whole path:
/// never a trap, never a 500 — a refusal (4xx), an acknowledgement (a dead letter for a
/// sender that retries, or an event that needs nothing), or a retry (503).
@Suite struct ExtremeValuesTests {
    /// Raw JSON literals: 64-bit bounds and ±1 around them, ±1 around the bounds
    /// Tollgate states, huge exponents, and NaN-like or impossible-date strings.
    static let numbers = [
        "-9223372036854775808", "-9223372036854775807", "-1", "0", "1", "9223372036854775806", "9223372036854775807",
        "9223372036854775808", "18446744073709551616", "253402300799", "253402300800", "-62135596800", "-62135596801", "1000000000",
        "1000000001", "1e308", "1e309", "-1e309", "1e-400", "0.5", "-0.0", "1E+2", #""NaN""#, #""Infinity""#, #""-1""#, "null", "true",
        "[]", "{}",
    ]
    static let times = [
        #""2026-02-31T00:00:00Z""#, #""0000-01-01T00:00:00Z""#, #""9999-12-31T23:59:59Z""#, #""2026-01-03T10:00:60Z""#,
        #""2026-01-03T10:00:00+99:59""#, #""0001-01-01T00:00:00Z""#, #""1999-12-31T23:59:59Z""#, #""2026-01-03T10:00:00.999999999999Z""#,
        #""not a time""#, "9223372036854775807", "null",
    ]

    static let start = Fixture.defaultStart.adding(seconds: 2 * 86_400)

    /// Paths of every number, and of every string that reads as a time, in `value`.
    static func leaves(_ value: JSONValue, at path: [String] = []) -> [(path: [String], isTime: Bool)] {
        switch value {
        case .integer, .double: return [(path, false)]
        case .string(let text): return Timestamp(rfc3339: text) == nil ? [] : [(path, true)]
        case .object(let fields): return fields.flatMap { leaves($0.value, at: path + [$0.key]) }
        case .array(let items): return items.enumerated().flatMap { leaves($0.element, at: path + [String($0.offset)]) }
        default: return []
        }
    }

    /// `value` with the leaf at `path` replaced by the raw JSON `literal`.
    static func replacing(_ path: [String], in value: JSONValue, with literal: String) -> Data {
        let marker = "__tollgate_extreme__"
        func set(_ value: JSONValue, _ path: ArraySlice<String>) -> JSONValue {
            guard let key = path.first else { return .string(marker) }
            switch value {
            case .object(var fields):
                fields[key] = set(fields[key] ?? .null, path.dropFirst())
                return .object(fields)
            case .array(var items):
                let index = Int(key)!
                items[index] = set(items[index], path.dropFirst())
                return .array(items)
            default: return value
            }
        }
        return Data(set(value, path[...]).rendered().replacingOccurrences(of: "\"\(marker)\"", with: literal).utf8)
    }

    struct Target {
        let function: EmulatedFunction
        let database: SQLiteDatabase

        init(_ name: String) async throws {
            database = try SQLiteDatabase(path: ":memory:", clock: FixedClock(time: ExtremeValuesTests.start))
            let ports = Ports(sqlite: database)
            for topic in EmulatedFunction.declarations.topics { try await SQLitePublisher(database).createTopic(topic) }
            function = try EmulatedFunction.make(
                name, ports: ports, issuer: sharedIssuer, clerk: try LocalOIDCIssuer(keyID: "clerk-extremes"), webhookSecrets: ["current"],
                logger: Logger(label: "extremes") { _ in SwiftLogNoOpLogHandler() })
        }

        func bearer() throws -> (name: String, value: String) {
            let token = try sharedIssuer.token(audience: LocalEnvironment.url(of: function.declaration.name), issuedAt: start)
            return ("Authorization", "Bearer \(token)")
        }
    }

    /// A 500 is the runtime's answer to a bug; 503 (Stripe unreachable here) is a retry.
    static func check(_ response: FunctionResponse, _ what: String) {
        #expect(response.status != 500, "\(what): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
    }

    @Test(arguments: [
        "subscription-created-pro.json", "subscription-created-pro-2024.json", "subscription-created-plan-2017.json",
        "subscription-updated-enterprise.json", "invoice-payment-succeeded.json", "invoice-payment-failed-2024.json",
    ])
    func stripePayloads_everyNumberAndTime_atEachExtreme_neverTrapOrAnswer500(payload: String) async throws {
        let event = try JSONValue.parse(
            try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/\(payload)")))
        let target = try await Target("stripe-webhook")
        let signer = StripeSigner(secret: LocalEnvironment.webhookSecrets["current"]!)
        var delivered = 0
        for (path, isTime) in Self.leaves(event) {
            for (index, literal) in (isTime ? Self.times : Self.numbers).enumerated() {
                // A fresh event id each time, so no delivery is a duplicate of another.
                let fresh = event.setting(["id"], .string("evt_extreme_\(delivered)_\(index)"))
                let body = Self.replacing(path, in: fresh, with: literal)
                let request = FunctionRequest(
                    method: "POST", path: "/",
                    headers: [("Stripe-Signature", signer.header(timestamp: Self.start.secondsSinceEpoch, body: body))], body: body)
                Self.check(await target.function.deliver(request), "\(payload) \(path.joined(separator: ".")) = \(literal)")
                delivered += 1
            }
        }
        #expect(delivered > 20)
    }

    /// The literals a usage quantity takes (docs/input-bounds.md: a JSON number whose value
    /// is whole, from 0 to 10⁹: `1E+2` is 100 and `-0.0` and `1e-400` are 0, as JSON has one
    /// kind of number and a float-minded sender writes `100.0`; strings are refused), and
    /// the one time of the table within 2000-01-01 … the recorder's clock + 7 days.
    static let usableQuantities: Set = ["0", "1", "1000000000", "1E+2", "-0.0", "1e-400"]
    static let usableTimes: Set = [#""2026-01-03T10:00:00.999999999999Z""#]

    /// Each extreme in both events of one message: a usable value records both events, any
    /// other dead-letters the whole message and records neither; the push is acknowledged
    /// either way (Pub/Sub would redeliver it forever).
    @Test func usageEvents_everyNumberAndTime_atEachExtreme_areRecorded_orDeadLetteredWhole() async throws {
        let event: JSONValue = .object([
            "requestId": .string("r1"), "accountId": .string("acct_1"), "time": .string("2026-01-03T10:00:00Z"), "endpoint": .string("/"),
            "units": .integer(5), "nodes": .integer(1), "nodeDimensionUnits": .integer(2),
        ])
        let target = try await Target("usage-recorder")
        let store = SQLiteDocumentStore(target.database)
        var recorded = 0
        var deadLettered = 0
        for (path, isTime) in Self.leaves(event) {
            for (index, literal) in (isTime ? Self.times : Self.numbers).enumerated() {
                let ids = ["r1", "r2"].map { "\($0)_\(path.joined(separator: "."))_\(index)" }
                let events = ids.map { id in
                    String(decoding: Self.replacing(path, in: event.setting(["requestId"], .string(id)), with: literal), as: UTF8.self)
                }
                let twice = #"{"events":[\#(events.joined(separator: ","))]}"#
                let push =
                    #"{"message":{"data":"\#(Data(twice.utf8).base64EncodedString())","messageId":"m","publishTime":"2026-01-03T10:00:00Z"},"subscription":"projects/p/subscriptions/s"}"#
                let request = FunctionRequest(method: "POST", path: "/", headers: [try target.bearer()], body: Data(push.utf8))
                let letters = try await store.query(DocumentQuery(collection: "deadLetters")).count
                let response = await target.function.deliver(request)
                let what = "usage \(path.joined(separator: ".")) = \(literal)"
                #expect((200..<300).contains(response.status), "\(what): \(response.status)")
                var entries = 0
                for id in ids {
                    let ledgerID = UsageRecord.ledgerID(accountId: "acct_1", requestId: id)
                    if try await store.get(DocumentPath(collection: UsageRecord.collection, id: ledgerID)) != nil { entries += 1 }
                }
                let newLetters = try await store.query(DocumentQuery(collection: "deadLetters")).count - letters
                if (isTime ? Self.usableTimes : Self.usableQuantities).contains(literal) {
                    #expect(entries == 2 && newLetters == 0, "\(what) is usable: \(entries) recorded, \(newLetters) dead letters")
                    recorded += 1
                } else {
                    #expect(entries == 0 && newLetters == 1, "\(what) is not: \(entries) recorded, \(newLetters) dead letters")
                    deadLettered += 1
                }
            }
        }
        // Three quantities and a time, each at every extreme.
        #expect(recorded == 3 * Self.usableQuantities.count + Self.usableTimes.count)
        #expect(deadLettered == 3 * (Self.numbers.count - Self.usableQuantities.count) + Self.times.count - Self.usableTimes.count)
    }

    /// What a report task's `units` and `records` take: a JSON number whose value is a whole
    /// number from 0 to 2⁶³−1 (usage-export writes them; usage-report checks them again).
    static let usableCounts: Set = [
        "0", "1", "9223372036854775806", "9223372036854775807", "253402300799", "253402300800", "1000000000", "1000000001", "1E+2",
        "-0.0", "1e-400",
    ]

    /// A usable task is reported (here: recorded as `no-customer`, the account has none) with
    /// exactly its numbers; any other is dead-lettered and reports nothing.
    @Test func usageReportTasks_everyNumber_atEachExtreme_areReported_orDeadLettered() async throws {
        let task: JSONValue = .object([
            "day": .string("2026-01-01"), "accountId": .string("acct_1"), "units": .integer(5), "records": .integer(2),
        ])
        let target = try await Target("usage-report")
        let store = SQLiteDocumentStore(target.database)
        for (path, _) in Self.leaves(task) {
            for (index, literal) in Self.numbers.enumerated() {
                let account = "acct_\(path.joined(separator: "."))_\(index)"
                let body = Self.replacing(path, in: task.setting(["accountId"], .string(account)), with: literal)
                // Every header Cloud Tasks sends: the body, not the envelope, is under test.
                let cloudTasks = CloudTasksRequest(
                    queueName: Queue.usageReports, taskName: "t\(index)", retryCount: 0, executionCount: 0, eta: 0)
                let request = FunctionRequest(
                    method: "POST", path: "/", headers: [try target.bearer()] + cloudTasks.headers.map { ($0.key, $0.value) }, body: body)
                let letters = try await store.query(DocumentQuery(collection: "deadLetters")).count
                let response = await target.function.deliver(request)
                let what = "task \(path.joined(separator: ".")) = \(literal)"
                #expect((200..<300).contains(response.status), "\(what): \(response.status)")
                let newLetters = try await store.query(DocumentQuery(collection: "deadLetters")).count - letters
                let report = try await store.get(
                    DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: UTCDay("2026-01-01")!, accountId: account))
                )?.decode(UsageReport.self)
                if Self.usableCounts.contains(literal) {
                    let sent = try #require(try JSONValue.parse(body)[path[0]]?.integerValue)
                    let reason = try await store.query(DocumentQuery(collection: "deadLetters")).last?.fields["reason"]
                    #expect(newLetters == 0 && report?.status == "no-customer", "\(what) is usable: \(String(describing: reason))")
                    #expect((path == ["units"] ? report?.value : report?.records) == sent, "\(what)")
                } else {
                    #expect(newLetters == 1 && report == nil, "\(what) is not: \(newLetters) dead letters, \(String(describing: report))")
                }
            }
        }
    }

    /// The header values of the table a task's headers take: counts are whole numbers from
    /// 0 to 2³¹−1 (so `count + 1` cannot overflow), the ETA a Unix time, fractions allowed,
    /// within years 1 to 9999; a previous response that is no HTTP status is ignored.
    static let usableTaskCounts: Set = ["0", "1", "1000000000", "1000000001"]
    static let usableETAs: Set = [
        "-62135596800", "-1", "0", "1", "253402300799", "1000000000", "1000000001", "1e-400", "0.5", "-0.0", "1E+2", #""-1""#,
    ]

    /// `X-CloudTasks-TaskRetryCount: 2⁶³−1` trapped in usage-report's `retryCount + 1`. Each
    /// header at each extreme, the others as Cloud Tasks sends them: a value out of its
    /// bounds dead-letters the task (acknowledged: Cloud Tasks would retry it), any other
    /// runs it.
    @Test func usageReportTaskHeaders_atEachExtreme_runTheTask_orDeadLetterIt() async throws {
        let target = try await Target("usage-report")
        try await seedBilledAccount(SQLiteDocumentStore(target.database), index: 1)
        let body = Data(#"{"day":"2026-01-01","accountId":"acct_1","units":5,"records":2}"#.utf8)
        let usable = [
            "X-CloudTasks-TaskRetryCount": Self.usableTaskCounts, "X-CloudTasks-TaskExecutionCount": Self.usableTaskCounts,
            "X-CloudTasks-TaskETA": Self.usableETAs, "X-CloudTasks-TaskPreviousResponse": Set(Self.numbers + Self.times),
        ]
        for (header, usableValues) in usable.sorted(by: { $0.key < $1.key }) {
            for (index, literal) in (Self.numbers + Self.times).enumerated() {
                let value = literal.hasPrefix("\"") ? String(literal.dropFirst().dropLast()) : literal
                var fields = CloudTasksRequest(
                    queueName: Queue.usageReports, taskName: "t\(index)", retryCount: 0, executionCount: 0, eta: 0
                )
                .headers
                fields[header] = value
                let request = FunctionRequest(
                    method: "POST", path: "/", headers: [try target.bearer()] + fields.map { ($0.key, $0.value) }, body: body)
                let response = await target.function.deliver(request)
                let answer = String(decoding: response.body, as: UTF8.self)
                let what = "\(header): \(value): \(answer)"
                // A dead letter is named by its function and body: every refusal here is one letter.
                let deadLettered = response.status == 200 && answer.contains("\"deadLetter\"")
                if !usableValues.contains(literal) {
                    #expect(deadLettered, "\(what)")
                } else if header == "X-CloudTasks-TaskRetryCount", let retries = Int(value), retries + 1 >= UsageReportFunction.maxAttempts
                {
                    // Cloud Tasks' last attempt: Stripe being down goes to a person.
                    #expect(deadLettered, "\(what)")
                } else {
                    // It ran as far as Stripe, unreachable here: a retry.
                    #expect(response.status == 503 && answer.contains("meter_events"), "\(what)")
                }
            }
        }
    }

    /// The schedule times of the table that are real instants (years 1 to 9999).
    static let instants: Set = [
        #""9999-12-31T23:59:59Z""#, #""0001-01-01T00:00:00Z""#, #""1999-12-31T23:59:59Z""#, #""2026-01-03T10:00:00.999999999999Z""#,
    ]

    /// A job run with every header Cloud Scheduler sends but one at an extreme: a schedule
    /// time that is no real instant is dead-lettered and acknowledged (Scheduler would retry
    /// it), and a run goes ahead whatever Cloud Tasks' headers say, since a scheduled
    /// function reads none of them.
    @Test(arguments: ["quota-reset", "usage-export", "cleanup"])
    func schedulerRuns_extremeScheduleTimesAndHeaders_runOrAreRefused(function: String) async throws {
        let target = try await Target(function)
        for literal in Self.times + Self.numbers {
            let value = literal.hasPrefix("\"") ? String(literal.dropFirst().dropLast()) : literal
            for header in ["X-CloudScheduler-ScheduleTime", "X-CloudTasks-TaskRetryCount", "X-CloudTasks-TaskETA"] {
                var fields = CloudSchedulerRequest(jobName: function, scheduleTime: Self.start).headers
                fields[header] = value
                let request = FunctionRequest(
                    method: "POST", path: "/", headers: [try target.bearer()] + fields.map { ($0.key, $0.value) }, body: Data("{}".utf8))
                let response = await target.function.deliver(request)
                let body = String(decoding: response.body, as: UTF8.self)
                let refused = header == "X-CloudScheduler-ScheduleTime" && !Self.instants.contains(literal)
                #expect(response.status == 200 && body.contains("\"deadLetter\"") == refused, "\(function) \(header): \(value): \(body)")
            }
        }
    }

    /// A cost is a whole number from 0 to 1,000,000: every other extreme is refused with 400
    /// and consumes nothing; 0 and 1 are served (1 consumes a unit, 0 only checks), and a
    /// cost in bounds above what the window has left is refused with 429.
    @Test func validatorCosts_atEachExtreme_areRefused_orServedAndCounted() async throws {
        let target = try await Target("auth-validator")
        let store = SQLiteDocumentStore(target.database)
        let key = try await seedKeyedAccount(store, id: "acct_costs", units: 10, pepper: LocalEnvironment.keyPepper)
        func used() async throws -> Int64 {
            try await store.get(try DocumentPath(collection: QuotaWindow.collection, id: "acct_costs"))?.decode(QuotaWindow.self).used ?? 0
        }
        let expected: [String: (status: Int, consumes: Int64)] = ["0": (200, 0), "1": (200, 1), "11": (429, 0), "1000000": (429, 0)]
        for literal in Self.numbers + ["11", "1000000"] {
            let before = try await used()
            let request = FunctionRequest(
                method: "POST", path: "/", headers: [("X-API-Key", key), ("X-Tollgate-Cost", literal)], body: Data())
            let response = await target.function.deliver(request)
            let (status, consumes) = expected[literal] ?? (400, 0)
            #expect(response.status == status, "cost \(literal): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            let consumed = try await used() - before
            #expect(consumed == consumes, "cost \(literal) consumed \(consumed)")
        }
    }
}
