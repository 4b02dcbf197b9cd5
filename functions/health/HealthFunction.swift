import Foundation
import TollgateModel
import TollgateRuntime

/// `health`: what an operator asks first, looked at every five minutes (Cloud Scheduler)
/// from the state every function leaves: the store answers; the newest export is complete
/// and recent; no dead letter waits; quota windows roll over on time; when the last Stripe
/// event arrived. Each check has its own deadline. The result is kept at `health/latest`,
/// counted on `/metrics` and answered as JSON: 503 only when the store fails (critical).
/// No function's `/healthz` depends on it: a deep check that fails everywhere must never
/// make Cloud Run replace healthy instances.
public struct HealthFunction: BuildableFunction {
    public typealias Event = SchedulerEvent

    public static let declaration = FunctionDeclaration(
        name: "health", trigger: .scheduler(job: "health", schedule: "*/5 * * * *", timeZone: "Etc/UTC"),
        service: .init(memory: "128Mi", concurrency: 1, maxInstances: 1, timeoutSeconds: 60))

    /// Where the latest result is kept.
    public static let latest = "health/latest"

    public enum Status: String, Sendable, Comparable {
        case ok, degraded, failing
        var rank: Int { self == .ok ? 0 : self == .degraded ? 1 : 2 }
        public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
    }

    /// One check's outcome: its status and what it found.
    public struct Check: Sendable {
        public var status: Status
        public var detail: [String: JSONValue]
        init(_ status: Status, _ detail: [String: JSONValue] = [:]) {
            self.status = status
            self.detail = detail
        }
        var json: JSONValue { .object(detail.merging(["status": .string(status.rawValue)]) { _, status in status }) }
    }

    /// `health/latest`: each check's status, and the whole answer as JSON text.
    public struct Record: Codable, Sendable, Hashable {
        public var status: String
        public var checked: Timestamp
        public var checks: [String: String]
        public var report: String
    }

    let store: any DocumentStore
    /// What one check may take; past it the check fails (the store) or is degraded.
    let checkDeadline: Duration

    public init(store: any DocumentStore, checkDeadline: Duration = .seconds(10)) {
        self.store = store
        self.checkDeadline = checkDeadline
    }

    public static func make(_ setup: FunctionSetup) throws -> Self { Self(store: setup.ports.store) }

    public func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        let now = context.clock.now()
        var checks: [String: Check] = [:]
        checks["store"] = await bounded(critical: true) { try await checkStore() }
        checks["export"] = await bounded { try await checkExport(now: now) }
        checks["deadLetters"] = await bounded { try await checkDeadLetters() }
        checks["quotaResets"] = await bounded { try await checkQuotaResets(now: now) }
        checks["lastStripeEvent"] = await bounded { try await checkLastStripeEvent(now: now) }
        let status = checks.values.map(\.status).max() ?? .ok
        let result: JSONValue = .object([
            "status": .string(status.rawValue), "checked": .string(now.rfc3339),
            "checks": .object(checks.mapValues(\.json)),
        ])
        for (name, check) in checks { context.count("health_checks", [("check", name), ("status", check.status.rawValue)]) }
        if checks["store"]?.status != .failing {
            let record = Record(
                status: status.rawValue, checked: now, checks: checks.mapValues(\.status.rawValue), report: result.rendered())
            _ = try? await store.set(try DocumentPath(Self.latest), try FieldValueEncoder().encode(record))
        }
        if status != .ok {
            let summary = checks.filter { $0.value.status != .ok }.keys.sorted().map { "\($0)=\(checks[$0]!.status.rawValue)" }
            context.logger.warning("health: \(status.rawValue)", metadata: ["checks": "\(summary.joined(separator: " "))"])
        }
        return .json(checks["store"]?.status == .failing ? 503 : 200, result)
    }

    /// Runs one check within its deadline; a check that throws or takes too long is
    /// failing when the store itself is the subject, else degraded (its source unknown).
    func bounded(critical: Bool = false, _ check: @escaping @Sendable () async throws -> Check) async -> Check {
        do {
            return try await Deadline.run(within: checkDeadline) { try await check() }
        } catch {
            return Check(critical ? .failing : .degraded, ["error": .string("\(error)")])
        }
    }

    /// The store answers a read. (How fast is the request metrics' business: the kept
    /// result holds only what the state says, so a replay leaves the same record.)
    func checkStore() async throws -> Check {
        _ = try await store.get(try DocumentPath(Self.latest))
        return Check(.ok)
    }

    /// The newest complete export, which usage-export writes after midnight UTC for the
    /// day before: more than 26 hours old means a day was missed.
    func checkExport(now: Timestamp) async throws -> Check {
        let query = DocumentQuery(collection: ExportState.collection).order(by: "day", descending: true).limit(10)
        let states = try await store.query(query).compactMap { try? $0.decode(ExportState.self) }
        guard let newest = states.first(where: { $0.status == "complete" }) else {
            return Check(.degraded, ["reason": .string("no export is complete yet")])
        }
        let age = now.secondsSinceEpoch - newest.completed.secondsSinceEpoch
        var detail: [String: JSONValue] = [
            "day": .string(newest.day ?? ""), "completed": .string(newest.completed.rfc3339), "ageHours": .integer(age / 3_600),
        ]
        if let verified = states.first(where: { $0.verified != nil })?.day { detail["lastVerifiedDay"] = .string(verified) }
        return Check(age <= 26 * 3_600 ? .ok : .degraded, detail)
    }

    /// What the check shows of a dead letter (never its body).
    struct LetterSummary: Decodable {
        var function: String
        var received: Timestamp
    }

    /// Dead letters wait for a person: any is degraded (the oldest of the first 100 shown).
    func checkDeadLetters() async throws -> Check {
        let letters = try await store.query(DocumentQuery(collection: DeadLetter.collection).order(by: "received").limit(100))
        guard let first = letters.first else { return Check(.ok, ["count": .integer(0)]) }
        var detail: [String: JSONValue] = ["count": letters.count == 100 ? .string("100+") : .integer(Int64(letters.count))]
        if let oldest = try? first.decode(LetterSummary.self) {
            detail["oldest"] = .string(oldest.received.rfc3339)
            detail["oldestFunction"] = .string(oldest.function)
        }
        return Check(.degraded, detail)
    }

    /// quota-reset runs every ten minutes: a window ended more than twenty minutes ago and
    /// not rolled over means it is behind (or failing).
    func checkQuotaResets(now: Timestamp) async throws -> Check {
        let overdue = try await store.query(
            DocumentQuery(collection: QuotaWindow.collection).filter("end", .lessThan, .timestamp(now.adding(seconds: -20 * 60)))
                .order(by: "end").limit(1))
        guard let window = try overdue.first?.decode(QuotaWindow.self) else { return Check(.ok) }
        return Check(.degraded, ["oldestEnded": .string(window.end.rfc3339), "account": .string(overdue[0].path.id)])
    }

    /// When the last Stripe event was applied: a fact for the operator (a quiet account
    /// sends none for days), never a failure.
    func checkLastStripeEvent(now: Timestamp) async throws -> Check {
        let newest = try await store.query(
            DocumentQuery(collection: StripeEventMarker.collection).order(by: "created", descending: true).limit(1)
        ).first?.decode(StripeEventMarker.self)
        guard let newest else { return Check(.ok, ["seen": .bool(false)]) }
        return Check(
            .ok,
            ["seen": .bool(true), "type": .string(newest.type), "ageHours": .integer((now.secondsSinceEpoch - newest.created) / 3_600)])
    }
}
