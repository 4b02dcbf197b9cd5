import Crypto
import Foundation
import TollgateModel
import TollgateRuntime
import TollgateStripe

/// `usage-report`: reports one account's exported usage for one day to Stripe Billing as
/// a meter event whose identifier is derived from the account, the meter and the day, so
/// Stripe's dedupe makes every retry safe, and records what Stripe accepted.
///
/// Cloud Tasks redelivers anything but a 2xx: a transient failure answers 503 and is
/// retried by the queue; Stripe refusing the event itself, or a failure on the queue's
/// last attempt, is written to `deadLetters` and acknowledged, so no account is billed
/// wrongly in silence.
public struct UsageReportFunction: BuildableFunction {
    public typealias Event = TaskEvent

    /// The `usage-reports` queue's RetryConfig (deploy/ is rendered from it): 8 attempts
    /// over about 15 minutes, so a Stripe outage shorter than that loses nothing.
    public static let retryConfig = TaskRetryConfig(
        maxAttempts: 8, minBackoffSeconds: 10, maxBackoffSeconds: 300, maxDoublings: 3)
    /// Attempts Cloud Tasks makes: the function dead-letters on the last one.
    public static var maxAttempts: Int { retryConfig.maxAttempts }

    /// The queue's RateLimits: a day's reports (one task per account) trickle to Stripe at
    /// 10 a second, 20 at once, far under Stripe's API rate limits, so a large day never
    /// turns into 429s.
    public static let rateLimits = TaskRateLimits(maxDispatchesPerSecond: 10, maxConcurrentDispatches: 20)

    public static let declaration = FunctionDeclaration(
        name: "usage-report", trigger: .cloudTasks(queue: Queue.usageReports, retry: retryConfig, limits: rateLimits),
        reads: Settings.all, service: .init(concurrency: 20, maxInstances: 10, timeoutSeconds: 120))

    /// What usage-report reads: Stripe's key and API, and the meter's event name.
    public enum Settings {
        public static let apiKey = Setting.required(
            "STRIPE_API_KEY", secret: true, summary: "a Stripe restricted key that may write meter events (`rk_live_…`)")
        public static let apiBase = Setting(
            "TOLLGATE_STRIPE_API_BASE", default: "https://api.stripe.com", summary: "Stripe's API (locally, the Stripe fake)")
        public static let meterEventName = Setting(
            "TOLLGATE_METER_EVENT_NAME", default: "api_units", summary: "the `event_name` of the Stripe Meter usage is reported to")
        public static let maxRetries = Setting(
            "TOLLGATE_STRIPE_MAX_RETRIES", .integer(0...10), default: "2",
            summary: "retries inside one call to Stripe (the queue retries the task after)")
        public static let timeout = Setting(
            "TOLLGATE_STRIPE_TIMEOUT_SECONDS", .integer(1...600), default: "20", summary: "how long one call to Stripe may take")
        public static let all = [apiKey, apiBase, meterEventName, maxRetries, timeout]
    }

    let store: any DocumentStore
    let billing: any Billing
    let eventName: String

    public init(store: any DocumentStore, billing: any Billing, eventName: String = "api_units") {
        self.store = store
        self.billing = billing
        self.eventName = eventName
    }

    /// From its declared settings (``Settings``).
    public static func make(_ setup: FunctionSetup) throws -> Self {
        let environment = setup.environment
        let stripe = StripeClient(
            configuration: .init(
                baseURL: try environment.required(Settings.apiBase), apiKey: try environment.required(Settings.apiKey),
                maxNetworkRetries: try environment.integer(Settings.maxRetries),
                timeout: .seconds(try environment.integer(Settings.timeout))))
        return Self(store: setup.ports.store, billing: stripe, eventName: try environment.required(Settings.meterEventName))
    }

    struct Job {
        var day: UTCDay
        var accountId: String
        var units: Int64
        var records: Int64
    }

    public func handle(_ event: TaskEvent, context: FunctionContext) async throws -> FunctionResponse {
        let job = try Self.decode(event.body)
        let attempt = Int64(event.task.retryCount + 1)
        let path = try DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: job.day, accountId: job.accountId))
        if let done = try await store.get(path)?.decode(UsageReport.self) {
            guard done.value == job.units else {
                throw TollgateError(
                    .invalidArgument, "\(job.day) for \(job.accountId) was reported as \(done.value) units; this task says \(job.units)")
            }
            return .json(200, .object(["status": .string("already-reported"), "identifier": .string(done.identifier)]))
        }
        let account = try await store.get(try DocumentPath(collection: Account.collection, id: job.accountId))?.decode(Account.self)
        let identifier = Self.identifier(accountId: job.accountId, eventName: eventName, day: job.day)
        var report = UsageReport(
            day: job.day, accountId: job.accountId, status: "no-customer", customerId: nil, eventName: eventName, identifier: identifier,
            value: job.units, records: job.records, reported: context.clock.now(), attempt: attempt)
        if let customer = account?.billing?.customerId {
            // The last second of the day: the usage lands in the billing period the day ends in.
            let meterEvent = MeterEvent(
                eventName: eventName, customerId: customer, value: job.units, identifier: identifier,
                timestamp: Timestamp(secondsSinceEpoch: job.day.end.secondsSinceEpoch - 1))
            do {
                _ = try await billing.report(meterEvent)
            } catch let error as TollgateError where error.code != .invalidArgument && attempt >= Self.maxAttempts {
                // Cloud Tasks will not try again: a person must see this one.
                throw TollgateError(.invalidArgument, "gave up after \(attempt) attempts: \(error.message)")
            }
            report.status = "reported"
            report.customerId = customer
        }
        // Create: two attempts racing both reached Stripe with one identifier; one record.
        do {
            try await store.create(path, try FieldValueEncoder().encode(report))
        } catch let error as TollgateError where error.code == .alreadyExists {}
        context.logger.info(
            "usage reported",
            metadata: [
                "day": "\(job.day)", "account": "\(job.accountId)", "units": "\(job.units)", "status": "\(report.status)",
                "attempt": "\(attempt)",
            ])
        return .json(200, .object(["status": .string(report.status), "identifier": .string(identifier)]))
    }

    /// `tg-{account}-{meter}-{day}`; hashed when over Stripe's 100 characters.
    public static func identifier(accountId: String, eventName: String, day: UTCDay) -> String {
        let plain = "tg-\(accountId)-\(eventName)-\(day)"
        guard plain.utf8.count > 100 else { return plain }
        return "tg-\(Hex.encode(SHA256.hash(data: Array("\(accountId)\u{0}\(eventName)".utf8)).prefix(20)))-\(day)"
    }

    static func decode(_ body: Data) throws -> Job {
        guard let json = try? JSONValue.parse(body), json.objectValue != nil else {
            throw TollgateError(.invalidArgument, "the task body is not a JSON object")
        }
        guard let dayText = json["day"]?.stringValue, let day = UTCDay(dayText) else {
            throw TollgateError(.invalidArgument, "day must be YYYY-MM-DD")
        }
        guard let accountId = json["accountId"]?.stringValue, (try? DocumentPath(collection: Account.collection, id: accountId)) != nil
        else { throw TollgateError(.invalidArgument, "accountId is missing or not a valid id") }
        guard let units = json["units"]?.integerValue, units >= 0 else {
            throw TollgateError(.invalidArgument, "units must be a whole number ≥ 0")
        }
        // `records` is informational (what the day's units were counted from); a task of an
        // earlier version may lack it, but one given must be a count.
        var records: Int64 = 0
        if let given = json["records"] {
            guard let count = given.integerValue, count >= 0 else {
                throw TollgateError(.invalidArgument, "records must be a whole number ≥ 0")
            }
            records = count
        }
        return Job(day: day, accountId: accountId, units: units, records: records)
    }
}
