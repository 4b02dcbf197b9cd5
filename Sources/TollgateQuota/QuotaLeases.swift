import Foundation
import Synchronization
import TollgateModel

/// How big a lease is and how long it lives (docs/quota-leases.md).
package struct LeasePolicy: Sendable {
    package init() {}

    /// A lease lives this long after its last grant or top-up.
    package var ttlSeconds: Int64 = 60
    /// The holder stops spending this long before expiry, for clocks that disagree by up
    /// to this much; another instance sweeps a lease only this long after its expiry.
    package var clockMarginSeconds: Int64 = 2
    /// An expired lease is kept this long for its holder to return it; after that it is
    /// taken to be a crashed holder's and removed (its units stay counted as spent).
    package var sweepAfterSeconds: Int64 = 3_600
    /// Grants and top-ups one account's window document should see a second, over all
    /// holders: Firestore sustains about one write a second on one document.
    package var writesPerSecond: Double = 1

    /// Seconds of this instance's traffic a block should cover: with `holders` instances
    /// each refilling that often, the document sees about `writesPerSecond`.
    func refillInterval(holders: Int) -> Double {
        min(30, max(0.25, Double(holders) / writesPerSecond))
    }

    /// Units an increment took and could not admit are given back only while the window
    /// ends further off than this (and `clockMarginSeconds`): an increment cannot tell
    /// which window it lands in, and a give-back landing in the next window would free
    /// units that were never counted there. Closer to the end they stay counted in the
    /// window that is ending. (An increment that takes units is safe in either window: what
    /// it admits is counted where it landed.)
    package var giveBackStopsBeforeEndSeconds: Int64 = 5

    /// Whether the window, read at `now`, may still see increments: no instance's clock
    /// (within `clockMarginSeconds`) can have seen it end and rolled it over.
    func counts(in window: QuotaWindow, at now: Timestamp) -> Bool {
        now < window.end.adding(seconds: -clockMarginSeconds)
    }

    /// Whether units taken at `now` may be given back to the window.
    func givesBack(to window: QuotaWindow, at now: Timestamp) -> Bool {
        now < window.end.adding(seconds: -clockMarginSeconds - giveBackStopsBeforeEndSeconds)
    }

    /// The smallest block asked for, so a cold instance does not go to the store for
    /// each of its first requests while its rate is still unknown.
    package var minimumBlock: Int64 = 10

    /// Units to ask for: the interval's worth of the observed rate, never less than `need`.
    /// While the rate estimate is still catching up, a block that lasted less than the
    /// interval doubles (`lastBlock`, `lastLasted` seconds), as TCP's slow start does: a
    /// cold instance reaches its steady block in a few grants, not dozens.
    func desired(ratePerSecond: Double, holders: Int, need: Int64, lastBlock: Int64 = 0, lastLasted: Double = .infinity) -> Int64 {
        let interval = refillInterval(holders: holders)
        var block = (ratePerSecond * interval).rounded(.up)
        if lastBlock > 0, lastLasted < interval { block = max(block, Double(lastBlock) * 2) }
        return max(need, minimumBlock, block >= Double(Int64.max / 2) ? Int64.max / 2 : Int64(block))
    }

    /// The largest share of a window's limit one holder's block may be (or one request's
    /// cost, when that is more): what a holder can strand when it dies or loses its memory
    /// (Redis restarted) is bounded by it, whatever a burst made the rate look like.
    package var maxBlockFraction: Double = 0.05

    /// The most of a window's limit kept out of leases for the last units (decided per
    /// request, one increment per batch): a larger reserve refuses less while other
    /// instances still hold blocks, and writes the window more often near its limit.
    package var maxReserveFraction: Double = 0.2

    /// Whether the window, as last seen, is within twice its largest reserve of its limit,
    /// where holders look at it each second.
    func isEndGame(_ window: QuotaWindow) -> Bool {
        let reserve = max(maxBlock(limit: window.limit, need: 1), Int64(Double(max(0, window.limit)) * maxReserveFraction))
        return window.limit - window.used <= 2 * reserve
    }

    /// How often a holder near the window's end looks whether to give units back: each
    /// second, or four times in the time it takes to spend what it holds when that is
    /// shorter (a tenth of a second at least). Each look is one read, without a lock.
    func lookInterval(unspent: Int64, ratePerSecond: Double) -> Double {
        guard ratePerSecond > 0 else { return 1 }
        return min(1, max(0.1, Double(unspent) / ratePerSecond / 4))
    }

    /// How often an instance refusing a used-up window from memory looks whether units came
    /// back while leases are outstanding (one read, no lock).
    package var recheckMicroseconds: Int64 = 100_000

    /// The units of the live leases of holders other than `instance` (expired ones count for
    /// nothing), for the reserve of ``grant(desired:remaining:limit:others:need:)``.
    func othersHolding(_ leases: [String: QuotaLease]?, besides instance: String, at now: Timestamp) -> [Int64] {
        (leases ?? [:]).filter { $0.key != instance && now < $0.value.expires.adding(seconds: clockMarginSeconds) }.values.map(\.granted)
    }

    /// The most one block may hold in a window of `limit` units.
    package func maxBlock(limit: Int64, need: Int64) -> Int64 {
        max(need, minimumBlock, Int64((Double(max(0, limit)) * maxBlockFraction).rounded(.down)))
    }

    /// What the window can grant: at most an equal share, among the other holders and this
    /// one, of what remains above a reserve, so blocks shrink as the limit nears, and never
    /// more than ``maxBlock(limit:need:)``; 0 when that share cannot cover `need`: the last
    /// units are decided per request. The reserve is one block plus what the other holders
    /// may still hold (`others`: each lease's units, counted as at most a block), never more than
    /// `maxReserveFraction` of the limit: while they spend their blocks, instances that ran
    /// out still find units, so when demand spread over the instances passes the limit, no
    /// unit is left in a lease while another instance refuses.
    func grant(desired: Int64, remaining: Int64, limit: Int64, others: [Int64], need: Int64) -> Int64 {
        let block = maxBlock(limit: limit, need: 1)
        let reserve = min(
            others.reduce(block) { $0 + min(max(0, $1), block) }, max(block, Int64(Double(max(0, limit)) * maxReserveFraction)))
        let share = max(0, remaining - reserve) / Int64(others.count + 1)
        let granted = min(desired, share, maxBlock(limit: limit, need: need))
        return granted >= need ? granted : 0
    }
}

/// The lease transactions on `quotas/{account}`.
extension QuotaBook {
    struct LeaseGrant: Sendable {
        var account: Account
        /// The window after the grant (its `used` counts every lease's units).
        var window: QuotaWindow
        /// This instance's lease after the grant; nil when nothing was granted.
        var lease: QuotaLease?
        /// Instances holding leases of the window after the grant (at least 1).
        var holders: Int
    }

    /// How a closing holder settles its lease.
    enum Settlement: Sendable {
        /// What it still holds unspent (Redis knows its remainder).
        case returning(Int64)
        /// What it spent from the lease: the rest of what the book granted goes back, also
        /// top-ups whose answer never reached the holder.
        case spent(Int64)
    }

    /// Settles and refills one instance's lease in one write: when `closing`, ends the
    /// lease `held` (or one of the `unconfirmed` grants this instance asked for without
    /// hearing the answer, from which nothing was spent) if it is still this instance's,
    /// expired or not (the holder knows what it spent), taking back what is unspent; sweeps
    /// leases expired for an hour (crashed holders': their units stay counted as spent);
    /// then, when the account passes `check`, grants up to `desired` units (a top-up of the
    /// lease held, or a new one named `newLease`).
    func lease(
        accountId: String, instance: String, held: String?, closing: Bool, settling: Settlement, unconfirmed: [String] = [],
        newLease: String = QuotaBook.newLeaseID(), desired: Int64, need: Int64,
        check: @escaping @Sendable (Account) -> Bool = { _ in true }, policy: LeasePolicy, now: Timestamp
    ) async throws -> LeaseGrant {
        try await withWindow(accountId: accountId, now: now) { account, window in
            var leases = window.leases ?? [:]
            var mine = leases[instance].flatMap { $0.id == held || unconfirmed.contains($0.id) ? $0 : nil }
            if let lease = mine, closing {
                let unspent: Int64
                switch (lease.id == held, settling) {
                case (false, _): unspent = lease.granted
                case (true, .returning(let units)): unspent = min(max(0, units), lease.granted)
                case (true, .spent(let units)): unspent = max(0, lease.granted - units)
                }
                window.used -= unspent
                mine = nil
                leases[instance] = nil
            }
            // An expired lease stays until its holder returns what it did not spend (only the
            // holder knows); one expired for longer than `sweepAfterSeconds` is taken to be a
            // crashed holder's and dropped, its units left counted as spent.
            leases = leases.filter { now < $0.value.expires.adding(seconds: policy.sweepAfterSeconds) }
            // A suspended or refused account gets no units: its requests are decided per request.
            let granted =
                account.admitsRequests && check(account)
                ? policy.grant(
                    desired: desired, remaining: window.limit - window.used, limit: window.limit,
                    others: policy.othersHolding(leases, besides: instance, at: now),
                    need: need)
                : 0
            if granted > 0 {
                var lease = mine ?? QuotaLease(id: newLease, granted: 0, expires: now)
                lease.granted += granted
                lease.expires = now.adding(seconds: policy.ttlSeconds)
                window.used += granted
                leases[instance] = lease
                mine = lease
            }
            window.leases = leases.isEmpty ? nil : leases
            window.holders = leases.isEmpty ? nil : Int64(leases.count)
            return LeaseGrant(account: account, window: window, lease: mine, holders: max(1, leases.count))
        }
    }

    static func newLeaseID() -> String { UUID().uuidString }
}

/// A window's last units, decided per request once no block can be granted: by increments
/// (``QuotaBook/count(_:account:window:)``) while this instance knows the window from its
/// last grant and the window is not near its end, else by transaction.
private final class LastUnits: Sendable {
    let book: QuotaBook
    let policy: LeasePolicy
    /// The account and window to count against, as the last grant read them.
    struct Known: Sendable {
        var account: Account
        var window: QuotaWindow
        /// The last grant granted nothing: counted until the window ends, a block's worth
        /// is free again or the entitlements change. Else a refill is under way.
        var lastUnits: Bool
    }

    let known = Mutex<[ExactID: Known]>([:])

    init(book: QuotaBook, policy: LeasePolicy) {
        self.book = book
        self.policy = policy
    }

    /// Decides by increments while the window is far from its end, else by transaction; the
    /// account leaves its last units (and asks for blocks again) once an increment finds a
    /// whole block free (units returned, a limit raised) or the window has ended.
    func decide(_ claims: [QuotaBook.Claim], accountId: String, now: Timestamp) async throws -> [QuotaBook.Consumption] {
        let key = ExactID(accountId)
        guard let (account, window) = known.withLock({ $0[key].map { ($0.account, $0.window) } }) else {
            return try await book.decide(claims, accountId: accountId, now: now)
        }
        guard policy.counts(in: window, at: now) else {
            if now >= window.end { known.withLock { $0[key] = nil } }
            return try await book.decide(claims, accountId: accountId, now: now)
        }
        do {
            let (outcomes, after) = try await book.count(
                claims, account: account, window: window, givingBack: policy.givesBack(to: window, at: now))
            // A block's worth free again (units returned, a limit raised): ask for blocks,
            // counting meanwhile.
            if after.limit - after.used >= policy.maxBlock(limit: after.limit, need: 1) {
                known.withLock { $0[key] = Known(account: account, window: after, lastUnits: false) }
            }
            return outcomes
        } catch let error as TollgateError where error.code == .notFound {
            known.withLock { $0[key] = nil }
            return try await book.decide(claims, accountId: accountId, now: now)
        }
    }
}

/// Admits requests from leases of quota held in memory (the distributed token bucket of
/// CockroachDB Serverless, Doorman's capacity leases): an instance takes a block of the
/// window's units in one write without a transaction (`LeaseWrites.swift`) and spends it
/// without touching the store,
/// topping it up in the background before it runs out, so a hot account's document sees
/// about one write a second however many instances serve it. Near the limit blocks shrink
/// and the last units are decided per request (`LastUnits`), so what is admitted reaches
/// the limit and never passes it.
package final class QuotaLeases: Sendable {
    private struct Held {
        var account: Account
        var window: QuotaWindow
        var lease: QuotaLease
        /// Units of `lease.granted` spent here.
        var spent: Int64
        var lastBlock: Int64
        /// When the last block (grant or top-up) arrived.
        var lastBlockAt: Timestamp
        /// When this holder last looked whether it keeps more than the window would grant it.
        var lastLookAt: Timestamp = .earliest
        /// Instances holding leases of the window at the last grant, this one included.
        var holders: Int
        var rate = DecayingRate()
        /// A refill is settling this lease: nothing more is spent from it.
        var settling = false
        /// The entitlements changed: the account and window here are not to be counted
        /// against; the next refill reads them afresh.
        var invalidated = false
        /// Every write of this lease was answered, so `lease.granted` is what the window
        /// holds: the next refill may write without a transaction. A write that failed or
        /// whose answer was lost leaves it false until a transaction settles the lease.
        var certain = true
        var unspent: Int64 { lease.granted - spent }
    }

    private struct State {
        var held: [ExactID: Held] = [:]
        /// The grant or top-up under way per account: one at a time, others wait for it.
        var refills: [ExactID: Task<Void, any Error>] = [:]
        /// Leases this instance asked for whose answer never came (a timeout after the
        /// write may have landed): the next refill settles whichever the book holds.
        var unconfirmed: [ExactID: [String]] = [:]
        /// Windows whose every unit is admitted or leased: refused from memory until `until`
        /// (the window's end when no lease is left that could return units, else 100 ms)
        /// or until the entitlements change.
        var exhausted: [ExactID: (account: Account, window: QuotaWindow, until: Timestamp)] = [:]
        /// Invalidations (entitlements changed) so far, by account: a grant or top-up that
        /// was under way across one installs its units but not as a usable lease, since the
        /// account it read may predate the change.
        var invalidations: [ExactID: Int] = [:]
    }

    private let book: QuotaBook
    private let lastUnits: LastUnits
    /// Batches the last units' decisions per account, as strict mode batches its transactions.
    private let perRequest: QuotaCombiner
    private let clock: any TollgateModel.Clock
    private let policy: LeasePolicy
    private let instance: String
    private let spawner: TaskSpawner
    private let state = Mutex(State())

    package init(
        book: QuotaBook, clock: any TollgateModel.Clock, policy: LeasePolicy = LeasePolicy(), instance: String,
        spawner: TaskSpawner = .tasks
    ) {
        self.spawner = spawner
        self.book = book
        let lastUnits = LastUnits(book: book, policy: policy)
        self.lastUnits = lastUnits
        perRequest = QuotaCombiner(clock: clock, spawner: spawner) { claims, accountId, now in
            try await lastUnits.decide(claims, accountId: accountId, now: now)
        }
        self.clock = clock
        self.policy = policy
        self.instance = instance
    }

    private enum Attempt {
        case decided(QuotaBook.Consumption)
        case strict
        case refill(Task<Void, any Error>)
    }

    package func consume(_ claim: QuotaBook.Claim, accountId: String) async throws -> QuotaBook.Consumption {
        let key = ExactID(accountId)
        for _ in 0..<3 {
            switch attempt(claim, key: key, accountId: accountId, now: clock.now()) {
            case .decided(let outcome): return outcome
            case .strict:
                let outcome = try await perRequest.consume(claim, accountId: accountId)
                // Every unit admitted or leased: with no lease left and nothing given back
                // in flight (`used` above the limit is an increment's surplus on its way
                // back), nothing can be admitted again in this window unless the limit rises
                // (an invalidation); else their holders spend or return units, and this
                // instance looks again in 100 ms rather than deciding each refusal on the
                // window.
                if case .exceeded(let account, let window) = outcome, window.used >= window.limit {
                    let now = clock.now()
                    let settled = (window.leases?.isEmpty ?? true) && window.used == window.limit
                    let until = settled ? window.end : min(window.end, now.adding(microseconds: policy.recheckMicroseconds))
                    state.withLock { $0.exhausted[key] = (account, window, until) }
                }
                return outcome
            case .refill(let task): try await task.value
            }
        }
        return try await perRequest.consume(claim, accountId: accountId)
    }

    /// Spends from the lease held in memory when it is valid and covers the cost; else
    /// joins (or starts) the account's refill.
    private func attempt(_ claim: QuotaBook.Claim, key: ExactID, accountId: String, now: Timestamp) -> Attempt {
        state.withLock { state -> Attempt in
            // Units held here are spent first, also in a window another instance found used
            // up: they were counted when they were leased, and refusing while holding them
            // strands them until the lease is returned.
            if var entry = state.held[key], usable(entry, now: now), entry.unspent >= claim.cost {
                guard claim.check(entry.account) else { return .decided(.refused(entry.account)) }
                entry.spent += claim.cost
                entry.rate.record(claim.cost, at: now)
                // Top up in the background before the block runs out: Cloud Run gives CPU to
                // requests, so a request starts it, never a timer.
                if state.refills[key] == nil, entry.unspent * 2 < entry.lastBlock {
                    let generation = state.invalidations[key] ?? 0
                    state.refills[key] = spawner.start {
                        try await self.topUp(key: key, accountId: accountId, generation: generation)
                    }
                } else if state.refills[key] == nil, entry.certain, policy.isEndGame(entry.window),
                    now.seconds(since: max(entry.lastBlockAt, entry.lastLookAt))
                        >= policy.lookInterval(unspent: entry.unspent, ratePerSecond: entry.rate.perSecond(at: now))
                {
                    // Near the window's end, units taken in earlier, larger blocks could outlast
                    // the reserve the other instances decide per request: a holder looks again
                    // and gives back what the window would no longer grant it.
                    entry.lastLookAt = now
                    state.refills[key] = spawner.start { try await self.trim(key: key, accountId: accountId) }
                }
                state.held[key] = entry
                return .decided(.admitted(entry.account, view(entry)))
            }
            if var used = state.exhausted[key], now < used.window.end {
                if now >= used.until, state.refills[key] == nil {
                    // Time to look again: one background read of the window (no transaction,
                    // no lock) while requests keep being refused from memory.
                    used.until = used.window.end
                    state.exhausted[key] = used
                    let account = used.account
                    state.refills[key] = spawner.start {
                        defer { self.state.withLock { $0.refills[key] = nil } }
                        await self.recheck(key: key, accountId: accountId, account: account)
                    }
                }
                return .decided(claim.check(used.account) ? .exceeded(used.account, used.window) : .refused(used.account))
            }
            state.exhausted[key] = nil
            // Requests never wait on a grant while this instance knows the window: they are
            // decided per request meanwhile (one increment per batch), so a hot account's
            // refills, which queue on the window's lock as blocks shrink near its limit,
            // stall no request. In its last units the account asks for no block at all.
            let known = lastUnits.known.withLock { $0[key] }
            if known?.lastUnits == true { return .strict }
            let refill =
                state.refills[key]
                ?? startRefill(&state, key: key, accountId: accountId, need: claim.cost, check: claim.check, now: now)
            let snapshot =
                known.map { ($0.account, $0.window) } ?? state.held[key].flatMap { $0.invalidated ? nil : ($0.account, $0.window) }
            guard let (account, window) = snapshot, policy.counts(in: window, at: now) else { return .refill(refill) }
            lastUnits.known.withLock { $0[key] = LastUnits.Known(account: account, window: window, lastUnits: false) }
            return .strict
        }
    }

    /// A used-up window with leases outstanding: units their holders return end the refusals.
    private func recheck(key: ExactID, accountId: String, account: Account) async {
        let now = clock.now()
        let window = try? await book.window(for: account, now: now)
        state.withLock { state in
            guard var used = state.exhausted[key] else { return }
            guard let window else {
                // The store failed: look again in a second.
                used.until = now.adding(seconds: 1)
                state.exhausted[key] = used
                return
            }
            if window.used < window.limit || window.start != used.window.start {
                state.exhausted[key] = nil
            } else {
                used.until =
                    (window.leases?.isEmpty ?? true) ? window.end : min(window.end, now.adding(microseconds: policy.recheckMicroseconds))
                state.exhausted[key] = used
            }
        }
    }

    private func usable(_ entry: Held, now: Timestamp) -> Bool {
        !entry.settling && now < entry.lease.expires.adding(seconds: -policy.clockMarginSeconds) && now < entry.window.end
    }

    /// What the verdict reports: the window as of the last grant, with this instance's
    /// unspent units counted as remaining.
    private func view(_ entry: Held) -> QuotaWindow {
        var window = entry.window
        window.used = max(0, window.used - entry.unspent)
        window.leases = nil
        return window
    }

    /// The lease is exhausted, missing or no longer valid: a transaction returns what it
    /// holds and takes a new block. Called with the state locked.
    private func startRefill(
        _ state: inout State, key: ExactID, accountId: String, need: Int64, check: @escaping @Sendable (Account) -> Bool = { _ in true },
        now: Timestamp
    ) -> Task<Void, any Error> {
        let entry = state.held[key]
        // Nothing is spent from it while it is settled; the book takes back what was granted
        // and not spent, which also covers a top-up whose answer was lost.
        let spent = entry?.spent ?? 0
        let heldID = entry?.lease.id
        if var settling = entry {
            settling.settling = true
            state.held[key] = settling
        }
        let unconfirmed = state.unconfirmed[key] ?? []
        let generation = state.invalidations[key] ?? 0
        let newLease = QuotaBook.newLeaseID()
        let desired = policy.desired(
            ratePerSecond: entry?.rate.perSecond(at: now) ?? 0, holders: entry?.holders ?? 1, need: need, lastBlock: entry?.lastBlock ?? 0,
            lastLasted: entry.map { now.seconds(since: $0.lastBlockAt) } ?? .infinity)
        // Without a transaction when this instance knows exactly what the window holds of
        // its lease (and nothing it asked for went unanswered), and knows the window or
        // holds nothing; else one transaction settles whatever the window holds.
        let known = entry.map { QuotaBook.KnownLease(lease: $0.lease, spent: $0.spent, windowStart: $0.window.start) }
        let withoutTransaction = unconfirmed.isEmpty && (entry?.certain ?? true)
        let task = spawner.start {
            defer { self.state.withLock { $0.refills[key] = nil } }
            do {
                let now = self.clock.now()
                let written =
                    withoutTransaction
                    ? try await self.book.leaseWithoutTransaction(
                        accountId: accountId, instance: self.instance, held: known, topUp: false, newLease: newLease, desired: desired,
                        need: need, check: check, policy: self.policy, now: now) : nil
                let grant: QuotaBook.LeaseGrant
                if let written {
                    grant = written
                } else {
                    grant = try await self.book.lease(
                        accountId: accountId, instance: self.instance, held: heldID, closing: true, settling: .spent(spent),
                        unconfirmed: unconfirmed, newLease: newLease, desired: desired, need: need, check: check, policy: self.policy,
                        now: now)
                }
                self.state.withLock { $0.unconfirmed[key] = nil }
                self.install(grant, key: key, generation: generation)
            } catch {
                // The write may have landed (a timeout after it was sent): the lease stays
                // settling, and the next refill settles whichever of these the book holds.
                self.state.withLock { $0.unconfirmed[key, default: []].append(newLease) }
                throw error
            }
        }
        state.refills[key] = task
        return task
    }

    /// Gives back what this holder keeps beyond what the window would grant it now.
    private func trim(key: ExactID, accountId: String) async throws {
        defer { state.withLock { $0.refills[key] = nil } }
        guard let unspent = state.withLock({ $0.held[key].map(\.unspent) }), unspent > 0,
            let keep = try await book.keepable(accountId: accountId, instance: instance, unspent: unspent, policy: policy, now: clock.now())
        else { return }
        // Taken out of the lease in memory before the write, so no request spends them meanwhile.
        let taken = state.withLock { state -> (QuotaLease, Int64)? in
            guard var entry = state.held[key], entry.certain, !entry.settling, !entry.invalidated, entry.unspent > keep else { return nil }
            let units = entry.unspent - keep
            let before = entry.lease
            entry.lease.granted -= units
            state.held[key] = entry
            return (before, units)
        }
        guard let (lease, units) = taken else { return }
        do {
            let (trimmed, _) = try await book.trim(accountId: accountId, instance: instance, held: lease, by: units)
            state.withLock { state in
                if state.held[key]?.lease.id == trimmed.id { state.held[key]?.lease.granted = trimmed.granted }
            }
        } catch {
            state.withLock { state in
                if state.held[key]?.lease.id == lease.id { state.held[key]?.certain = false }
            }
            throw error
        }
    }

    private func topUp(key: ExactID, accountId: String, generation: Int) async throws {
        defer { state.withLock { $0.refills[key] = nil } }
        let now = clock.now()
        let found = state.withLock { state -> (Held, Int64)? in
            state.held[key].flatMap { entry -> (Held, Int64)? in
                // An invalidated lease is settled by the next request, never topped up.
                guard !entry.settling, !entry.invalidated else { return nil }
                // Half the block went in `lasted` seconds: the whole would last twice that.
                let desired = policy.desired(
                    ratePerSecond: entry.rate.perSecond(at: now), holders: entry.holders, need: 1, lastBlock: entry.lastBlock,
                    lastLasted: 2 * now.seconds(since: entry.lastBlockAt))
                return (entry, desired)
            }
        }
        guard let (entry, desired) = found else { return }
        do {
            let written =
                entry.certain
                ? try await book.leaseWithoutTransaction(
                    accountId: accountId, instance: instance,
                    held: QuotaBook.KnownLease(lease: entry.lease, spent: entry.spent, windowStart: entry.window.start),
                    topUp: true, newLease: entry.lease.id, desired: desired, need: 1, policy: policy, now: now) : nil
            let grant: QuotaBook.LeaseGrant
            if let written {
                grant = written
            } else {
                grant = try await book.lease(
                    accountId: accountId, instance: instance, held: entry.lease.id, closing: false, settling: .spent(0),
                    desired: desired, need: 1, policy: policy, now: now)
            }
            install(grant, key: key, generation: generation)
        } catch {
            // The top-up may have landed: the lease is spent as known, then settled by transaction.
            state.withLock { state in
                if state.held[key]?.lease.id == entry.lease.id { state.held[key]?.certain = false }
            }
            throw error
        }
    }

    /// Takes a grant into memory: a top-up of the lease held, or a new lease. When the
    /// entitlements changed while it was under way (`generation` is behind), what it read
    /// may predate the change: its units are kept, as an invalidated lease the next request
    /// settles and refills, reading the account afresh.
    private func install(_ grant: QuotaBook.LeaseGrant, key: ExactID, generation: Int) {
        let now = clock.now()
        state.withLock { state in
            let entry = state.held[key]
            let stale = (state.invalidations[key] ?? 0) != generation
            guard var lease = grant.lease else {
                // Nothing granted and nothing held: the account is in its last units.
                state.held[key] = nil
                lastUnits.known.withLock {
                    $0[key] = stale ? nil : LastUnits.Known(account: grant.account, window: grant.window, lastUnits: true)
                }
                return
            }
            if stale { lease.expires = Timestamp.earliest }
            // Requests decided per request while this grant was under way count against the
            // window it read (none when the entitlements changed meanwhile).
            lastUnits.known.withLock {
                $0[key] = stale ? nil : LastUnits.Known(account: grant.account, window: grant.window, lastUnits: false)
            }
            state.exhausted[key] = nil
            let holders = grant.holders
            if var current = entry, current.lease.id == lease.id {
                current.lastBlock = lease.granted - current.lease.granted
                current.lastBlockAt = now
                current.lease = lease
                current.account = grant.account
                current.window = grant.window
                current.holders = holders
                current.certain = true
                current.invalidated = current.invalidated || stale
                state.held[key] = current
            } else {
                var fresh = Held(
                    account: grant.account, window: grant.window, lease: lease, spent: 0, lastBlock: lease.granted, lastBlockAt: now,
                    holders: holders)
                fresh.rate = entry?.rate ?? DecayingRate()
                fresh.invalidated = stale
                state.held[key] = fresh
            }
        }
    }

    /// Entitlements changed: the next request refills, returning what is held and reading
    /// the account afresh.
    package func invalidate(_ accountId: String) {
        state.withLock { state in
            state.held[ExactID(accountId)]?.lease.expires = Timestamp.earliest
            state.held[ExactID(accountId)]?.invalidated = true
            state.exhausted[ExactID(accountId)] = nil
            state.invalidations[ExactID(accountId), default: 0] += 1
        }
        lastUnits.known.withLock { $0[ExactID(accountId)] = nil }
    }

    /// Waits for the grants and top-ups under way.
    package func settle() async {
        while let running = state.withLock({ $0.refills.values.first }) { _ = try? await running.value }
    }

    /// Unspent units held, by account (for tests and the simulator's accounting).
    package func unspent() -> [String: Int64] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.held.values.map { ($0.account.id, $0.settling ? 0 : max(0, $0.unspent)) })
        }
    }

    /// Returns every unspent unit to its window (on SIGTERM): afterwards nothing is held.
    /// A grant or top-up under way is awaited first, then what it added is returned too;
    /// so is a lease whose grant was never answered (settled by transaction).
    package func returnAll() async {
        for _ in 0..<4 {
            let now = clock.now()
            let tasks = state.withLock { state -> [Task<Void, any Error>] in
                // A grant under way may be for an account nothing is held of yet: a request
                // decided per request is answered before the block it started lands.
                let accounts = Set(state.held.keys).union(state.refills.keys).union(state.unconfirmed.keys)
                return accounts.map { key in
                    state.refills[key]
                        ?? startRefill(
                            &state, key: key, accountId: state.held[key]?.account.id ?? key.description, need: Int64.max, now: now)
                }
            }
            if tasks.isEmpty { return }
            for task in tasks { _ = try? await task.value }
        }
    }
}

/// Units a second, an average decaying with a one-second time constant. In its first
/// second the average is scaled by the part of a second it has seen, so a cold
/// instance's first estimate is its rate, not a fraction of it.
struct DecayingRate: Sendable {
    private var weighted: Double = 0
    private var first: Timestamp?
    private var last: Timestamp?

    mutating func record(_ units: Int64, at now: Timestamp) {
        weighted = decayed(at: now) + Double(units)
        if first == nil { first = now }
        last = now
    }

    private func decayed(at now: Timestamp) -> Double {
        guard let last else { return 0 }
        return weighted * exp(-max(0, now.seconds(since: last)))
    }

    func perSecond(at now: Timestamp) -> Double {
        guard let first else { return 0 }
        // What a steady rate r accumulates over a span T: r·(1 − e^(−T)); T is floored at
        // a tenth of a second, so one early request does not read as a flood.
        let span = max(0.1, now.seconds(since: first))
        return decayed(at: now) / (1 - exp(-span))
    }
}

extension Timestamp {
    func seconds(since earlier: Timestamp) -> Double {
        Double(microsecondsSinceEpoch - earlier.microsecondsSinceEpoch) / 1_000_000
    }
}
