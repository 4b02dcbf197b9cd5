import Foundation
import Synchronization
import TollgateModel
import TollgateQuota

/// A discrete-event simulation of auth-validator's quota paths against a model of
/// Firestore: N instances serving accounts, in virtual time, deterministic by seed. The
/// instances run the real code (`QuotaLeases`, `QuotaCombiner`, `QuotaBook`); only the
/// store and the clock are simulated.
package struct QuotaScenario: Sendable {
    package var name: String
    package var accounts = 1
    /// Requests a second over all accounts (Poisson arrivals, spread evenly over accounts
    /// and over the live instances).
    package var requestsPerSecond: Double
    package var instances: Int
    package var seconds: Int
    /// The first seconds of the run, left out of the write rate and latency figures:
    /// instances take their first blocks then (the burst scenario measures that cold start).
    package var warmUpSeconds = 0
    /// Each account's limit for the window.
    package var limit: Int64
    /// Instances start this many at a time per second from zero (nil: all at start).
    package var instancesStartingPerSecond: Int?
    /// Seconds at which this many instances are killed (SIGKILL: their leases orphaned).
    package var kill: (at: Int, count: Int)?
    package var latency = SimulatedFirestore.Latency()
    /// When the run starts (virtual time); windows are calendar months, so a start just
    /// before a month's end rolls the window over mid-run.
    package var start = QuotaSimulation.start

    package init(name: String, requestsPerSecond: Double, instances: Int, seconds: Int, limit: Int64) {
        self.name = name
        self.requestsPerSecond = requestsPerSecond
        self.instances = instances
        self.seconds = seconds
        self.limit = limit
    }
}

package enum QuotaPath: String, Sendable, CaseIterable, Codable {
    case strict, lease
}

package struct QuotaSimulationReport: Sendable, Codable {
    package var scenario: String
    package var path: QuotaPath
    package var requests = 0
    package var admitted: Int64 = 0
    /// Each account's admitted units against what it could have admitted: min(limit, demand).
    package var admittedOfPossible: Double = 0
    /// Refusals before the account had admitted its limit less the units stranded.
    package var wrongfulRefusals = 0
    /// Units counted in windows but never admitted once the live instances have returned
    /// their leases: what killed instances held.
    package var stranded: Int64 = 0
    package var overAdmitted: Int64 = 0
    package var hotWritesPerSecond: Double = 0
    package var hotWritesPeak = 0
    package var latencyP50Milliseconds: Double = 0
    package var latencyP99Milliseconds: Double = 0
    package var aborts = 0
    package var errors = 0
    /// Committed writes on the hottest document in each second of the run (for the plot).
    package var hotWritesBySecond: [Int] = []
    /// The added latency's 99th percentile among the requests that began in each second.
    package var latencyP99BySecondMilliseconds: [Double] = []
}

package enum QuotaSimulation {
    /// The issue's scenarios, `short` scaled down for CI (seconds, not minutes).
    package static func scenarios(short: Bool) -> [QuotaScenario] {
        let warmUp = short ? 3 : 10
        let measured = short ? 10 : 60
        let seconds = warmUp + measured
        let scale = short ? 0.2 : 1
        let rate = 5_000 * scale
        var hot = QuotaScenario(
            name: "one hot account, \(Int(rate)) req/s over 20 instances", requestsPerSecond: rate, instances: 20, seconds: seconds,
            limit: 100_000_000)
        var many = QuotaScenario(
            name: "\(Int(10_000 * scale)) accounts at 1 req/s", requestsPerSecond: 10_000 * scale, instances: 20, seconds: seconds,
            limit: 1_000_000)
        many.accounts = Int(10_000 * scale)
        var burst = QuotaScenario(
            name: "burst from zero instances (5 start a second)", requestsPerSecond: rate, instances: 20, seconds: measured,
            limit: 100_000_000)
        burst.instancesStartingPerSecond = 5
        let middle = start.adding(seconds: Int64(warmUp + measured / 2))
        var spike = QuotaScenario(
            name: "store latency spike of 1 s", requestsPerSecond: rate, instances: 20, seconds: seconds, limit: 100_000_000)
        spike.latency.spike = (middle, middle.adding(seconds: 2), 1_000)
        // Limits half of the demand: the window runs out mid-run.
        var kills = QuotaScenario(
            name: "5 of 20 instances killed mid-window", requestsPerSecond: rate, instances: 20, seconds: seconds,
            limit: Int64(rate) * Int64(seconds) / 2)
        // A quarter of the way in: before the window runs out, while the killed hold blocks.
        kills.kill = (warmUp + measured / 4, 5)
        var above = QuotaScenario(
            name: "demand twice the limit", requestsPerSecond: rate, instances: 20, seconds: seconds,
            limit: Int64(rate) * Int64(seconds) / 2)
        hot.warmUpSeconds = warmUp
        many.warmUpSeconds = warmUp
        spike.warmUpSeconds = warmUp
        kills.warmUpSeconds = warmUp
        above.warmUpSeconds = warmUp
        // The window rolls over half-way (a month ends), each window's demand twice its limit.
        var rollOver = QuotaScenario(
            name: "window roll-over mid-run, demand twice the limit", requestsPerSecond: rate, instances: 20, seconds: seconds,
            limit: Int64(rate) * Int64(seconds) / 4)
        rollOver.start = Timestamp(rfc3339: "2026-04-01T00:00:00Z")!.adding(seconds: -Int64(warmUp + measured / 2))
        rollOver.warmUpSeconds = warmUp
        return [hot, many, burst, spike, kills, above, rollOver]
    }

    static let start = Timestamp(rfc3339: "2026-03-10T12:00:00Z")!

    /// Runs one scenario on one path, every task on the scheduler's serial executor.
    package static func run(_ scenario: QuotaScenario, path: QuotaPath, seed: UInt64) async throws -> QuotaSimulationReport {
        let scheduler = SimulationScheduler(start: scenario.start)
        return try await withTaskExecutorPreference(scheduler.executor) {
            try await simulate(scenario, path: path, seed: seed, scheduler: scheduler)
        }
    }

    static func simulate(_ scenario: QuotaScenario, path: QuotaPath, seed: UInt64, scheduler: SimulationScheduler) async throws
        -> QuotaSimulationReport
    {
        let start = scenario.start
        // Requests before this are the first window's, after it the next one's.
        let roll = QuotaPeriod.month.window(containing: start, billing: nil).end
        let store = SimulatedFirestore(scheduler: scheduler, latency: scenario.latency, seed: seed)
        let accountIds = (0..<scenario.accounts).map { "acct_\($0)" }
        for id in accountIds {
            let entitlements = Entitlements(features: [], monthlyQuotaUnits: scenario.limit, maxNodes: 1, maxDimensions: 1)
            try store.seed(
                try DocumentPath(collection: Account.collection, id: id),
                try FieldValueEncoder().encode(Account(id: id, tier: .enterprise, entitlements: entitlements)))
        }
        let book = QuotaBook(store: store, period: .month, catalog: .standard)
        let instances: [Consumer] = (0..<scenario.instances).map { index in
            let strict = QuotaCombiner(book: book, clock: scheduler, spawner: scheduler.spawner)
            switch path {
            case .strict: return Consumer(strict: strict, leases: nil)
            case .lease:
                return Consumer(
                    strict: strict,
                    leases: QuotaLeases(book: book, clock: scheduler, instance: "i\(index)", spawner: scheduler.spawner))
            }
        }
        let outcomes = Outcomes()
        let end = start.adding(seconds: Int64(scenario.seconds))
        let random = Mutex(SeededGenerator(seed: seed ^ 0x5EED))

        // One arrival stream: each arrival schedules the next, so few events are pending.
        @Sendable func arrive(at time: Timestamp) {
            scheduler.at(time) {
                let now = scheduler.now()
                let elapsed = Int((now.microsecondsSinceEpoch - start.microsecondsSinceEpoch) / 1_000_000)
                let live = liveInstances(scenario, elapsed: elapsed)
                let (instance, account, gap) = random.withLock { random in
                    (
                        live.randomElement(using: &random) ?? 0, accountIds.randomElement(using: &random) ?? "acct_0",
                        random.exponential(mean: 1 / scenario.requestsPerSecond)
                    )
                }
                _ = scheduler.spawner.start {
                    let began = scheduler.now()
                    do {
                        let (admitted, window) = try await instances[instance].consume(accountId: account)
                        let second = Int((began - start).components.seconds)
                        let elapsed = Int((scheduler.now() - start).components.seconds)
                        let live = liveInstances(scenario, elapsed: elapsed).map { instances[$0] }
                        let wrongful = try !admitted && unitsLeft(account, window: window, held: live) > 0
                        outcomes.record(
                            // Counted in the window that decided it (a request queued across
                            // the roll-over is the new window's).
                            account: Outcomes.key(account, window: (window ?? began) < roll ? 0 : 1), admitted: admitted, second: second,
                            measured: second >= scenario.warmUpSeconds, latency: scheduler.now() - began, wrongful: wrongful)
                    } catch {
                        outcomes.recordError()
                    }
                    scheduler.noteActivity()
                }
                let next = now.adding(microseconds: Int64(gap * 1_000_000))
                if next < end { arrive(at: next) }
            }
        }
        /// Units of the account's window, as answered, that nobody has admitted and no killed
        /// instance holds: free in the store, or held unspent in a live instance's lease. A
        /// refusal answered while there are any is wrongful. (Measured when the answer is
        /// recorded, not against the admissions recorded so far: an admission decided before
        /// a refusal may be answered after it.)
        @Sendable func unitsLeft(_ account: String, window: Timestamp?, held live: [Consumer]) throws -> Int64 {
            guard let window,
                let stored = try store.snapshot(try DocumentPath(collection: QuotaWindow.collection, id: account))?.decode(
                    QuotaWindow.self),
                stored.start == window
            else { return 0 }
            return max(0, stored.limit - stored.used) + live.reduce(Int64(0)) { $0 + ($1.leases?.unspent()[account] ?? 0) }
        }
        arrive(at: start)
        // At the end the live instances are stopped (SIGTERM): they return their leases;
        // killed ones cannot.
        scheduler.at(end) {
            for index in liveInstances(scenario, elapsed: scenario.seconds) {
                if let leases = instances[index].leases { _ = scheduler.spawner.start { await leases.returnAll() } }
            }
        }
        await scheduler.run(until: end)
        // Requests in flight at the end finish (the gateway waits for them).
        await scheduler.run(until: end.adding(seconds: 30))

        var report = QuotaSimulationReport(scenario: scenario.name, path: path)
        let results = outcomes.snapshot()
        report.requests = results.requests
        report.errors = results.errors
        report.admitted = results.admitted.values.reduce(0, +)
        var possible: Int64 = 0
        let windows = roll < end ? [0, 1] : [0]
        for id in accountIds {
            for index in windows {
                let key = Outcomes.key(id, window: index)
                let admitted = results.admitted[key, default: 0]
                possible += min(scenario.limit, results.demand[key, default: 0])
                // The store holds the last window only; an earlier one's units ended with it.
                let window =
                    index == windows.last
                    ? try store.snapshot(try DocumentPath(collection: QuotaWindow.collection, id: id))?.decode(QuotaWindow.self) : nil
                let stranded = max(0, (window?.used ?? 0) - admitted)
                report.stranded += stranded
                report.wrongfulRefusals += results.wrongful[key, default: 0]
                report.overAdmitted += max(0, admitted - scenario.limit)
            }
        }
        report.admittedOfPossible = possible == 0 ? 1 : Double(report.admitted) / Double(possible)
        let hot = try DocumentPath(collection: QuotaWindow.collection, id: "acct_0")
        report.hotWritesBySecond = store.writeSeries(hot, from: start, seconds: scenario.seconds)
        let measuredWrites = report.hotWritesBySecond.dropFirst(scenario.warmUpSeconds)
        report.hotWritesPerSecond = Double(measuredWrites.reduce(0, +)) / Double(max(1, measuredWrites.count))
        report.hotWritesPeak = measuredWrites.max() ?? 0
        let latencies = results.latencies.sorted()
        if !latencies.isEmpty {
            report.latencyP50Milliseconds = latencies[latencies.count / 2]
            report.latencyP99Milliseconds = latencies[min(latencies.count - 1, latencies.count * 99 / 100)]
        }
        report.aborts = store.aborts
        report.latencyP99BySecondMilliseconds = (0..<scenario.seconds).map { second in
            let sorted = results.latencyBySecond[second, default: []].sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        }
        return report
    }

    static func liveInstances(_ scenario: QuotaScenario, elapsed: Int) -> [Int] {
        var count = scenario.instances
        if let perSecond = scenario.instancesStartingPerSecond { count = min(count, perSecond * (elapsed + 1)) }
        var live = Array(0..<count)
        if let kill = scenario.kill, elapsed >= kill.at { live.removeFirst(min(kill.count, live.count)) }
        return live
    }

    /// The report as Markdown rows, both paths side by side.
    package static func table(_ reports: [QuotaSimulationReport]) -> String {
        var lines = [
            "| scenario | path | requests | admitted ÷ possible | over-admitted | wrongful refusals | units stranded | hot doc writes/s (mean, peak) | added latency p50 / p99 (ms) | aborts |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for report in reports {
            lines.append(
                "| \(report.scenario) | \(report.path.rawValue) | \(report.requests) | \(String(format: "%.4f", report.admittedOfPossible)) | \(report.overAdmitted) | \(report.wrongfulRefusals) | \(report.stranded) | \(String(format: "%.2f", report.hotWritesPerSecond)), \(report.hotWritesPeak) | \(String(format: "%.2f", report.latencyP50Milliseconds)) / \(String(format: "%.2f", report.latencyP99Milliseconds)) | \(report.aborts) |"
            )
        }
        return lines.joined(separator: "\n")
    }
}

/// One instance: its strict combiner, and its leases on the lease path.
struct Consumer: Sendable {
    let strict: QuotaCombiner
    let leases: QuotaLeases?

    /// Whether the request was admitted, and the start of the window that decided it.
    func consume(accountId: String) async throws -> (admitted: Bool, window: Timestamp?) {
        let claim = QuotaBook.Claim(cost: 1) { _ in true }
        let outcome =
            if let leases { try await leases.consume(claim, accountId: accountId) } else {
                try await strict.consume(claim, accountId: accountId)
            }
        switch outcome {
        case .admitted(_, let window): return (true, window.start)
        case .exceeded(_, let window): return (false, window.start)
        case .refused: return (false, nil)
        }
    }
}

/// What the simulated requests saw, by account and window.
final class Outcomes: Sendable {
    static func key(_ account: String, window: Int) -> String { "\(account)#\(window)" }

    struct Results {
        var requests = 0
        var errors = 0
        var admitted: [String: Int64] = [:]
        /// Refusals answered while the window still had units (``unitsLeft``), by account.
        var wrongful: [String: Int] = [:]
        var demand: [String: Int64] = [:]
        var latencies: [Double] = []
        var latencyBySecond: [Int: [Double]] = [:]
    }

    private let results = Mutex(Results())

    func record(account: String, admitted: Bool, second: Int, measured: Bool, latency: Duration, wrongful: Bool) {
        results.withLock { results in
            results.requests += 1
            results.demand[account, default: 0] += 1
            if admitted {
                results.admitted[account, default: 0] += 1
            } else if wrongful {
                results.wrongful[account, default: 0] += 1
            }
            let milliseconds = Double(latency.components.seconds) * 1_000 + Double(latency.components.attoseconds) / 1e15
            if measured { results.latencies.append(milliseconds) }
            results.latencyBySecond[second, default: []].append(milliseconds)
        }
    }

    func recordError() {
        results.withLock {
            $0.requests += 1
            $0.errors += 1
        }
    }
    func snapshot() -> Results { results.withLock { $0 } }
}

extension Timestamp {
    fileprivate func adding(microseconds: Int64) -> Timestamp { Timestamp(microsecondsSinceEpoch: microsecondsSinceEpoch + microseconds) }
    fileprivate static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .microseconds(lhs.microsecondsSinceEpoch - rhs.microsecondsSinceEpoch)
    }
}
