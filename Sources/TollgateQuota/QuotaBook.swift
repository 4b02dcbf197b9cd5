import Synchronization
import TollgateModel

/// Reads and consumes quota. Consuming is one transaction over the account and its
/// window, so the limit holds under any concurrency and across processes, and the
/// entitlements used are never stale.
package struct QuotaBook: Sendable {
    let store: any DocumentStore
    package let period: QuotaPeriod
    let catalog: TierCatalog

    package init(store: any DocumentStore, period: QuotaPeriod, catalog: TierCatalog) {
        self.store = store
        self.period = period
        self.catalog = catalog
    }

    /// Accounts that never subscribed are on Free.
    func defaultAccount(_ id: String) -> Account {
        Account(id: id, tier: .free, entitlements: catalog.entitlements(for: .free))
    }

    package func account(_ id: String) async throws -> Account {
        try await store.get(try DocumentPath(collection: Account.collection, id: id))?.decode(Account.self) ?? defaultAccount(id)
    }

    /// The current window without changing it (a window that has ended reads as the next one).
    package func window(for account: Account, now: Timestamp) async throws -> QuotaWindow {
        let stored = try await store.get(try DocumentPath(collection: QuotaWindow.collection, id: account.id))?.decode(QuotaWindow.self)
        return QuotaWindow.current(stored, account: account, period: period, now: now)
    }

    package enum Consumption: Sendable {
        case admitted(Account, QuotaWindow)
        case exceeded(Account, QuotaWindow)
        case refused(Account)
    }

    /// One request waiting to consume.
    package struct Claim: Sendable {
        var cost: Int64
        /// Runs on the fresh account; false refuses the request without consuming.
        var check: @Sendable (Account) -> Bool

        package init(cost: Int64, check: @escaping @Sendable (Account) -> Bool) {
            self.cost = cost
            self.check = check
        }
    }

    /// Decides a batch of claims on one account in one transaction: in order, each claim
    /// that passes its check and fits is admitted; one write records them all.
    func decide(_ claims: [Claim], accountId: String, now: Timestamp) async throws -> [Consumption] {
        try await withWindow(accountId: accountId, now: now) { account, window in
            claims.map { claim in
                if !claim.check(account) { return .refused(account) }
                // Compared as what remains: `used + cost` could overflow on a limit stored
                // near 2⁶³ before limits had bounds; `limit - used` cannot (both ≥ 0).
                guard claim.cost <= window.limit - window.used else { return .exceeded(account, window) }
                window.used += claim.cost
                return .admitted(account, window)
            }
        }
    }

    /// Decides a batch of claims on a window known to be stored and current, without a
    /// transaction: one write adds the batch's cost to `used` and reads `limit` (an
    /// increment by 0) in the same atomic step; the claims that fit in what the window had
    /// left before the write are admitted in order, and the rest is given back by a second
    /// increment (unless `givingBack` is false: close to the window's end they stay
    /// counted). No read takes a lock, so instances deciding a window's last units queue
    /// only for the write itself, never on one another's read locks (two pessimistic
    /// transactions that read one document wait on each other: production Firestore aborts
    /// one, the emulator times one out after 2 s). Never over the limit: every change of
    /// `used` is an increment or a transaction, which the store serialises, so the units a
    /// write found left are this batch's alone. A give-back that fails (or whose answer is
    /// lost) is not retried: its units stay counted, never admitted twice.
    /// Answers each claim's outcome and the window as this batch left it.
    /// - Throws: `NOT_FOUND` when the window document is gone (decide by transaction then).
    func count(_ claims: [Claim], account: Account, window known: QuotaWindow, givingBack: Bool = true) async throws -> (
        outcomes: [Consumption], window: QuotaWindow
    ) {
        let path = try DocumentPath(collection: QuotaWindow.collection, id: account.id)
        let passes = claims.map { $0.check(account) }
        let asked = zip(claims, passes).reduce(Int64(0)) { sum, pair in pair.1 ? sum + pair.0.cost : sum }
        guard asked > 0 else { return (passes.map { $0 ? .admitted(account, known) : .refused(account) }, known) }
        let result = try await store.commitWithResults([
            .update(path, [:], transforms: [.increment("used", .integer(asked)), .increment("limit", .integer(0))])
        ])
        guard let values = result.transformResults.first, values.count == 2, case .integer(let after) = values[0],
            case .integer(let limit) = values[1]
        else {
            try await store.increment(path, "used", by: -asked)
            throw TollgateError(.internal, "the window of \(account.id) holds a non-integer used or limit")
        }
        var window = known
        window.limit = limit
        window.used = after - asked
        var left = max(0, limit - window.used)
        let outcomes = zip(claims, passes).map { claim, passes -> Consumption in
            guard passes else { return .refused(account) }
            guard claim.cost <= left else { return .exceeded(account, window) }
            left -= claim.cost
            window.used += claim.cost
            return .admitted(account, window)
        }
        let unadmitted = after - window.used
        if unadmitted > 0, givingBack { _ = try? await store.increment(path, "used", by: -unadmitted) }
        return (outcomes, window)
    }

    /// One transaction over an account and its current window (rolled over when it has
    /// ended, its limit raised to the entitlements): `change` edits the window, which is
    /// written when it differs from the stored one. A window that was not stored is written
    /// only when units were counted in it: a refusal alone never creates one.
    func withWindow<Result: Sendable>(
        accountId: String, now: Timestamp, _ change: @escaping @Sendable (Account, inout QuotaWindow) throws -> Result
    ) async throws -> Result {
        let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
        let quotaPath = try DocumentPath(collection: QuotaWindow.collection, id: accountId)
        let period = self.period
        let fallback = defaultAccount(accountId)
        // Contention across instances is expected on a busy account: retry for longer.
        return try await store.runTransaction(maxAttempts: 30) { transaction in
            let account = try await transaction.get(accountPath)?.decode(Account.self) ?? fallback
            let stored = try await transaction.get(quotaPath)?.decode(QuotaWindow.self)
            let (result, changed) = try Self.apply(change, account: account, stored: stored, period: period, now: now)
            if let changed { try transaction.set(quotaPath, try FieldValueEncoder().encode(changed)) }
            return result
        }
    }

    /// The window as `change` leaves it (rolled over when it has ended, its limit raised to
    /// the entitlements), or nil when nothing needs writing: it equals the stored one, or
    /// was never stored and counts no unit (a refusal alone never creates one).
    private static func apply<Result>(
        _ change: (Account, inout QuotaWindow) throws -> Result, account: Account, stored: QuotaWindow?, period: QuotaPeriod,
        now: Timestamp
    ) throws -> (Result, QuotaWindow?) {
        var window = QuotaWindow.current(stored, account: account, period: period, now: now)
        window.limit = window.effectiveLimit(entitlements: account.entitlements)
        let result = try change(account, &window)
        return (result, stored.map { $0 != window } ?? (window.used > 0) ? window : nil)
    }
}

/// Coalesces concurrent claims on the same account in this instance: while one
/// transaction for an account runs, new claims queue, and the next transaction decides
/// them all at once. A hot account then costs one transaction per batch instead of one
/// per request, and the instance never contends with itself.
/// Starts the background work of the quota paths: a plain `Task` in production; the
/// simulator's keeps every task on its one serial executor, so a run is deterministic.
package struct TaskSpawner: Sendable {
    package let start: @Sendable (@escaping @Sendable () async throws -> Void) -> Task<Void, any Error>

    package init(start: @escaping @Sendable (@escaping @Sendable () async throws -> Void) -> Task<Void, any Error>) {
        self.start = start
    }

    package static let tasks = TaskSpawner { operation in Task { try await operation() } }
}

package final class QuotaCombiner: Sendable {
    private struct Waiting {
        var claim: QuotaBook.Claim
        var continuation: CheckedContinuation<QuotaBook.Consumption, any Error>
        /// The request's deadline (``Deadline``), nil when it has none.
        var deadline: ContinuousClock.Instant?
    }

    private struct Line {
        var running = false
        var waiting: [Waiting] = []
    }

    /// Decides one batch of claims on one account.
    package typealias Decide =
        @Sendable (_ claims: [QuotaBook.Claim], _ accountId: String, _ now: Timestamp) async throws -> [QuotaBook
        .Consumption]

    private let decide: Decide
    private let clock: any TollgateModel.Clock
    // Keyed by bytes: two accounts whose ids differ only in Unicode normalisation are two lines.
    private let lines = Mutex<[ExactID: Line]>([:])
    /// Claims decided in one transaction at most.
    private let batchLimit = 500

    private let spawner: TaskSpawner

    /// Each batch decided in one transaction (``QuotaBook/decide(_:accountId:now:)``).
    package convenience init(book: QuotaBook, clock: any TollgateModel.Clock, spawner: TaskSpawner = .tasks) {
        self.init(clock: clock, spawner: spawner) { claims, accountId, now in try await book.decide(claims, accountId: accountId, now: now)
        }
    }

    package init(clock: any TollgateModel.Clock, spawner: TaskSpawner = .tasks, decide: @escaping Decide) {
        self.decide = decide
        self.clock = clock
        self.spawner = spawner
    }

    package func consume(_ claim: QuotaBook.Claim, accountId: String) async throws -> QuotaBook.Consumption {
        try await withCheckedThrowingContinuation { continuation in
            let key = ExactID(accountId)
            let start = lines.withLock { lines -> Bool in
                var line = lines[key] ?? Line()
                line.waiting.append(Waiting(claim: claim, continuation: continuation, deadline: Deadline.current))
                let start = !line.running
                line.running = true
                lines[key] = line
                return start
            }
            if start { _ = spawner.start { await self.drain(accountId) } }
        }
    }

    private func drain(_ accountId: String) async {
        let key = ExactID(accountId)
        while true {
            let batch = lines.withLock { lines -> [Waiting] in
                guard var line = lines[key], !line.waiting.isEmpty else {
                    lines[key] = nil
                    return []
                }
                let batch = Array(line.waiting.prefix(batchLimit))
                line.waiting.removeFirst(batch.count)
                lines[key] = line
                return batch
            }
            if batch.isEmpty { return }
            do {
                // The drain outlives the request that started it: each batch gets the
                // latest deadline among its own requests, not the first request's.
                let deadlines = batch.map(\.deadline)
                let deadline = deadlines.contains(nil) ? nil : deadlines.compactMap { $0 }.max()
                let outcomes = try await Deadline.$current.withValue(deadline) {
                    try await decide(batch.map(\.claim), accountId, clock.now())
                }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(returning: outcome) }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
