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
/// each value of a table of extremes, delivered signed through the function's whole path,
/// and judged by an exact outcome written apart from the code: what lands where, or the
/// refusal (4xx, or a dead letter acknowledged for a sender that retries) with nothing written.
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

        init(_ name: String, clerk: LocalOIDCIssuer? = nil) async throws {
            database = try SQLiteDatabase(path: ":memory:", clock: FixedClock(time: ExtremeValuesTests.start))
            let ports = Ports(sqlite: database)
            for topic in EmulatedFunction.declarations.topics { try await SQLitePublisher(database).createTopic(topic) }
            function = try EmulatedFunction.make(
                name, ports: ports, issuer: sharedIssuer, clerk: try clerk ?? LocalOIDCIssuer(keyID: "clerk-extremes"),
                webhookSecrets: ["current"],
                logger: Logger(label: "extremes") { _ in SwiftLogNoOpLogHandler() })
        }

        func bearer() throws -> (name: String, value: String) {
            let token = try sharedIssuer.token(audience: LocalEnvironment.url(of: function.declaration.name), issuedAt: start)
            return ("Authorization", "Bearer \(token)")
        }
    }

    /// The whole number each literal of `numbers` stands for, as JSON has one kind of number
    /// (`1E+2` is 100; `-0.0` and `1e-400` are 0); absent for a fraction, a number past 64
    /// bits, text and the other kinds.
    static let wholeNumbers: [String: Int64] = [
        "-9223372036854775808": .min, "-9223372036854775807": .min + 1, "-1": -1, "0": 0, "1": 1,
        "9223372036854775806": .max - 1, "9223372036854775807": .max, "253402300799": 253_402_300_799,
        "253402300800": 253_402_300_800, "-62135596800": -62_135_596_800, "-62135596801": -62_135_596_801,
        "1000000000": 1_000_000_000, "1000000001": 1_000_000_001, "1e-400": 0, "-0.0": 0, "1E+2": 100,
    ]

    /// Numbers past a Double's range: no JSON parser can hold them, so the body is refused whole.
    static let unparseable: Set = ["1e309", "-1e309"]

    /// Unix seconds within years 1 to 9999 (docs/input-bounds.md).
    static let unixTimes: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    /// The fields of a Stripe event stripe-webhook reads a number from; every other number
    /// is Stripe's and changes nothing.
    enum StripeNumber {
        case eventCreated, periodStart, periodEnd, attemptCount

        init?(_ path: [String], in event: JSONValue) {
            let object = event["data"]?["object"]
            // Since 2025-03-31 the period is on the subscription's item; before, on the subscription.
            let itemHasPeriod = object?["items"]?["data"]?.arrayValue?.first?["current_period_start"] != nil
            switch path.joined(separator: ".") {
            case "created": self = .eventCreated
            case "data.object.items.data.0.current_period_start": self = .periodStart
            case "data.object.items.data.0.current_period_end": self = .periodEnd
            case "data.object.current_period_start" where !itemHasPeriod: self = .periodStart
            case "data.object.current_period_end" where !itemHasPeriod: self = .periodEnd
            case "data.object.attempt_count" where object?["object"]?.stringValue == "invoice": self = .attemptCount
            default: return nil
            }
        }

        /// The account the event leaves when the field holds `literal`; nil when the event is
        /// poison: an event without a created time, a time outside years 1 to 9999, an
        /// attempt count outside 0 to 10,000, or a field that is not a whole number.
        func account(_ literal: String, from baseline: Account) -> Account? {
            var account = baseline
            if literal == "null" {
                switch self {
                case .eventCreated: return nil
                case .periodStart: account.billing?.currentPeriodStart = nil
                case .periodEnd: account.billing?.currentPeriodEnd = nil
                case .attemptCount: account.lastInvoice?.attemptCount = 0
                }
                return account
            }
            guard let value = ExtremeValuesTests.wholeNumbers[literal] else { return nil }
            switch self {
            case .eventCreated:
                guard ExtremeValuesTests.unixTimes.contains(value) else { return nil }
                if account.billing != nil { account.billing?.lastEventCreated = value } else { account.lastInvoice?.eventCreated = value }
            case .periodStart, .periodEnd:
                guard ExtremeValuesTests.unixTimes.contains(value) else { return nil }
                let time = Timestamp(secondsSinceEpoch: value)
                if self == .periodStart { account.billing?.currentPeriodStart = time } else { account.billing?.currentPeriodEnd = time }
            case .attemptCount:
                guard (0...10_000).contains(value) else { return nil }
                account.lastInvoice?.attemptCount = value
            }
            return account
        }
    }

    /// One signed delivery of `body` to a stripe-webhook of its own, and what it left.
    static func deliverToStripe(_ body: Data, clerk: LocalOIDCIssuer) async throws -> (
        response: FunctionResponse, accounts: [Account], letters: [DeadLetter], markers: Int
    ) {
        let target = try await Target("stripe-webhook", clerk: clerk)
        let signer = StripeSigner(secret: LocalEnvironment.webhookSecrets["current"]!)
        let request = FunctionRequest(
            method: "POST", path: "/", headers: [("Stripe-Signature", signer.header(timestamp: start.secondsSinceEpoch, body: body))],
            body: body)
        let response = await target.function.deliver(request)
        let store = SQLiteDocumentStore(target.database)
        let accounts = try await store.query(DocumentQuery(collection: Account.collection)).map { try $0.decode(Account.self) }
        let letters = try await store.query(DocumentQuery(collection: DeadLetter.collection)).map { try $0.decode(DeadLetter.self) }
        let markers = try await store.query(DocumentQuery(collection: StripeEventMarker.collection)).count
        return (response, accounts, letters, markers)
    }

    /// Each delivery reaches a store of its own, so each is judged against the unchanged
    /// event's outcome: a number stripe-webhook does not read changes nothing; one it reads
    /// lands in the account exactly; poison is dead-lettered and acknowledged (Stripe retries
    /// any other answer for three days), with nothing applied and no marker.
    @Test(arguments: [
        "subscription-created-pro.json", "subscription-created-pro-2024.json", "subscription-created-plan-2017.json",
        "subscription-updated-enterprise.json", "invoice-payment-succeeded.json", "invoice-payment-failed-2024.json",
    ])
    func stripePayloads_everyNumber_atEachExtreme_landsExactly_orIsDeadLetteredWhole(payload: String) async throws {
        let event = try JSONValue.parse(
            try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/\(payload)")))
        let clerk = try LocalOIDCIssuer(keyID: "clerk-extremes")
        let baseline = try await Self.deliverToStripe(Data(event.rendered().utf8), clerk: clerk)
        let baselineAccount = try #require(baseline.accounts.first)
        let outcome = try JSONValue.parse(baseline.response.body)["outcome"]?.stringValue
        try #require(baseline.response.status == 200 && outcome == "applied" && baseline.accounts.count == 1)
        var (read, poison) = (0, 0)
        for (path, isTime) in Self.leaves(event) {
            try #require(!isTime, "Stripe sends times as Unix seconds")
            let field = StripeNumber(path, in: event)
            if field != nil { read += 1 }
            for literal in Self.numbers {
                let what = "\(payload) \(path.joined(separator: ".")) = \(literal)"
                let delivered = try await Self.deliverToStripe(Self.replacing(path, in: event, with: literal), clerk: clerk)
                let body = try JSONValue.parse(delivered.response.body)
                #expect(delivered.response.status == 200, "\(what): \(delivered.response.status)")
                let expected =
                    Self.unparseable.contains(literal) ? nil : field.map { $0.account(literal, from: baselineAccount) } ?? baselineAccount
                if let expected {
                    #expect(body["outcome"]?.stringValue == outcome, "\(what)")
                    #expect(delivered.accounts == [expected], "\(what)")
                    #expect(delivered.letters.isEmpty && delivered.markers == 1, "\(what)")
                } else {
                    poison += 1
                    #expect(body["deadLetter"] != nil, "\(what)")
                    #expect(delivered.accounts.isEmpty && delivered.markers == 0, "\(what): nothing applied")
                    let names = Self.unparseable.contains(literal) ? "JSON" : path.last!
                    #expect(
                        delivered.letters.map(\.reason).allSatisfy { $0.contains(names) }, "\(what): \(delivered.letters.map(\.reason))")
                    #expect(delivered.letters.count == 1, "\(what)")
                }
            }
        }
        // The event's created time and the fields it reads were perturbed, and some were poison.
        #expect(read >= 2 && poison > 0)
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
