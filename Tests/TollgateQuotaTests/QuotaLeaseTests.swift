import Foundation
import Synchronization
import Testing
import TollgateEmulator
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateQuota

/// Leases of quota (docs/quota-leases.md): whatever the interleaving, what is admitted
/// never passes the limit, every unit is either admitted, held by a lease or returned, and
/// the last units go per request so that demand above the limit reaches it.
@Suite struct QuotaLeaseTests {
    struct Instances {
        let store: SQLiteDocumentStore
        let book: QuotaBook
        let clock: VirtualClock
        let leases: [QuotaLeases]

        init(count: Int, limit: Int64, spawner: TaskSpawner = .tasks) async throws {
            clock = VirtualClock(start: Timestamp(rfc3339: "2026-03-10T12:00:00Z")!)
            store = SQLiteDocumentStore(try temporaryDatabase(clock: clock))
            try await Self.setLimit(limit, in: store)
            let book = QuotaBook(store: store, period: .month, catalog: .standard)
            self.book = book
            let clock = self.clock
            leases = (0..<count).map { index in
                QuotaLeases(book: book, clock: clock, instance: "instance-\(index)", spawner: spawner)
            }
        }

        /// Stores the account with a monthly limit of `units` (as stripe-webhook does on a change of plan).
        static func setLimit(_ units: Int64, in store: SQLiteDocumentStore) async throws {
            let entitlements = Entitlements(features: [], monthlyQuotaUnits: units, maxNodes: 1, maxDimensions: 1)
            try await store.set(
                path("accounts/acct_hot"),
                try FieldValueEncoder().encode(Account(id: "acct_hot", tier: .enterprise, entitlements: entitlements)))
        }

        func setLimit(_ units: Int64) async throws { try await Self.setLimit(units, in: store) }

        var window: QuotaWindow {
            get async throws { try #require(try await store.get(path("quotas/acct_hot"))?.decode(QuotaWindow.self)) }
        }

        func consume(_ instance: Int, cost: Int64 = 1) async throws -> Bool {
            if case .admitted = try await leases[instance].consume(.init(cost: cost) { _ in true }, accountId: "acct_hot") { return true }
            return false
        }

        /// Units held by every instance once their top-ups under way have landed.
        var held: Int64 {
            get async {
                for leases in leases { await leases.settle() }
                return leases.map { $0.unspent()["acct_hot"] ?? 0 }.reduce(0, +)
            }
        }
    }

    /// Grants and top-ups are started through it; while `held`, they wait before starting.
    final class GatedSpawner: Sendable {
        let spawned = Counter()
        let held = Mutex(false)
        var spawner: TaskSpawner {
            TaskSpawner { [self] operation in
                _ = spawned.next()
                return Task {
                    while held.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
                    try await operation()
                }
            }
        }
    }

    /// An invalidation (entitlements changed) that arrives while a top-up is under way is
    /// not undone when the top-up lands: what it read may predate the change, so the next
    /// request settles the lease and reads the account afresh instead of spending from it.
    @Test func aTopUpUnderWayAcrossAnInvalidation_doesNotMakeTheLeaseUsableAgain() async throws {
        let gate = GatedSpawner()
        let cloud = try await Instances(count: 1, limit: 10_000, spawner: gate.spawner)
        #expect(try await cloud.consume(0))
        await cloud.leases[0].settle()
        // Spend from the lease until it starts a top-up, which waits at the gate.
        gate.held.withLock { $0 = true }
        let before = gate.spawned.count
        for _ in 0..<1_000 where gate.spawned.count == before { #expect(try await cloud.consume(0)) }
        try #require(gate.spawned.count == before + 1, "a top-up started")
        cloud.leases[0].invalidate("acct_hot")
        gate.held.withLock { $0 = false }
        await cloud.leases[0].settle()
        // The next request does not spend from the topped-up lease: it settles and refills.
        let refills = gate.spawned.count
        #expect(try await cloud.consume(0))
        #expect(gate.spawned.count > refills, "the request refilled rather than spending from a lease read before the change")
    }

    @Test func aGrant_isAtMostAnEqualShareOfWhatRemainsAboveTheReserve_andZeroWhenTheShareCannotCoverTheCost() {
        let policy = LeasePolicy()
        let limit: Int64 = 10_000
        let block = policy.maxBlock(limit: limit, need: 1)
        #expect(block == 500, "a block is at most a twentieth of the limit")
        #expect(policy.grant(desired: 100, remaining: 10_000, limit: limit, others: [], need: 1) == 100)
        // One block is kept for the last units, and what another holder may still hold.
        #expect(policy.grant(desired: 1_000, remaining: 1_000, limit: limit, others: [300], need: 1) == 100)
        #expect(policy.grant(desired: 100, remaining: block, limit: limit, others: [], need: 1) == 0, "the last block goes per request")
        #expect(policy.grant(desired: 100, remaining: block + 5, limit: limit, others: [], need: 6) == 0)
        #expect(policy.grant(desired: 100, remaining: -3, limit: limit, others: [], need: 1) == 0)
        // Many holders: the reserve stops at a fifth of the limit.
        let ten = Array(repeating: block, count: 10)
        #expect(policy.grant(desired: 100, remaining: 3_000, limit: limit, others: ten, need: 1) == (3_000 - 2_000) / 11)
        // Never more than a twentieth of the limit in one block, whatever the rate looked like;
        // a request that costs more still gets its cost.
        #expect(policy.grant(desired: 10_000, remaining: 10_000, limit: limit, others: [], need: 100) == 500)
        #expect(policy.grant(desired: 10_000, remaining: 10_000, limit: limit, others: [], need: 800) == 800)
        #expect(policy.refillInterval(holders: 20) == 20, "20 holders refilling every 20 s: one write a second")
        #expect(policy.desired(ratePerSecond: 250, holders: 20, need: 1) == 5_000)
        #expect(policy.desired(ratePerSecond: 0, holders: 1, need: 7) == policy.minimumBlock, "a cold instance asks for a block")
        #expect(policy.desired(ratePerSecond: 0, holders: 1, need: 70) == 70)
        #expect(
            policy.desired(ratePerSecond: 5, holders: 20, need: 1, lastBlock: 400, lastLasted: 2) == 800,
            "a block that ran out before its interval doubles (slow start)")
        #expect(policy.desired(ratePerSecond: 5, holders: 20, need: 1, lastBlock: 400, lastLasted: 30) == 100)
    }

    /// The rate estimate of a cold instance is its rate, not the part of it a decaying
    /// average has seen so far.
    @Test func theRateEstimate_ofAColdInstance_isItsRate() {
        let start = Timestamp(rfc3339: "2026-03-10T12:00:00Z")!
        var rate = DecayingRate()
        for tick in 0..<50 { rate.record(1, at: Timestamp(microsecondsSinceEpoch: start.microsecondsSinceEpoch + Int64(tick) * 4_000)) }
        let estimate = rate.perSecond(at: Timestamp(microsecondsSinceEpoch: start.microsecondsSinceEpoch + 200_000))
        #expect(estimate > 200 && estimate < 300, "250 a second seen for 0.2 s reads \(estimate)")
    }

    /// A store whose next commits land but whose answers are lost, as when a deadline
    /// passes after Firestore applied the write.
    final class LosingAnswers: DocumentStore, Sendable {
        let inner: any DocumentStore
        let losing = Mutex(0)
        init(_ inner: any DocumentStore) { self.inner = inner }

        func get(_ path: DocumentPath) async throws -> DocumentSnapshot? { try await inner.get(path) }
        func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] { try await inner.query(query) }
        func runTransaction<T: Sendable>(maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T) async throws -> T {
            let result = try await inner.runTransaction(maxAttempts: maxAttempts, body)
            try loseTheAnswer()
            return result
        }
        /// Grants, top-ups and returns, by transaction or written without one (they touch
        /// `leases`), lose their answers; increments deciding the last units keep theirs (a
        /// lost one strands its batch's units, `QuotaBook.count`).
        func commitWithResults(_ writes: [Write]) async throws -> CommitResult {
            let result = try await inner.commitWithResults(writes)
            let touchesLeases = writes.contains { write in
                guard case .update(let fields) = write.operation else { return write.transforms.isEmpty }
                return (Array(fields.keys) + write.transforms.map(\.field)).contains { $0.segments.first == "leases" }
                    || write.transforms.isEmpty
            }
            if touchesLeases { try loseTheAnswer() }
            return result
        }
        private func loseTheAnswer() throws {
            let lose = losing.withLock { count in
                defer { count = max(0, count - 1) }
                return count > 0
            }
            if lose { throw TollgateError(.deadlineExceeded, "the answer was lost after the write landed") }
        }
    }

    /// A grant or top-up whose write landed but whose answer was lost strands nothing: the
    /// holder settles by what it spent, and its next refill closes whichever lease the book
    /// holds, the unconfirmed one included (docs/quota-leases.md).
    @Test func aGrantOrTopUpWhoseAnswerWasLost_strandsNothing() async throws {
        let clock = VirtualClock(start: Timestamp(rfc3339: "2026-03-10T12:00:00Z")!)
        let sqlite = SQLiteDocumentStore(try temporaryDatabase(clock: clock))
        let entitlements = Entitlements(features: [], monthlyQuotaUnits: 1_000, maxNodes: 1, maxDimensions: 1)
        try await sqlite.set(
            path("accounts/acct_hot"),
            try FieldValueEncoder().encode(Account(id: "acct_hot", tier: .enterprise, entitlements: entitlements)))
        let store = LosingAnswers(sqlite)
        let book = QuotaBook(store: store, period: .month, catalog: .standard)
        let leases = QuotaLeases(book: book, clock: clock, instance: "instance-0")
        var (admitted, failed): (Int64, Int) = (0, 0)
        // A request whose refill failed is answered 503 and admits nothing.
        func consume() async throws {
            do {
                if case .admitted = try await leases.consume(.init(cost: 1) { _ in true }, accountId: "acct_hot") { admitted += 1 }
            } catch let error as TollgateError where error.code == .deadlineExceeded {
                failed += 1
            }
        }
        try await consume()
        // The lease expires; the refill that replaces it lands, but its answer is lost.
        clock.advance(seconds: 2 * LeasePolicy().ttlSeconds)
        store.losing.withLock { $0 = 1 }
        try await consume()
        await leases.settle()
        #expect(store.losing.withLock { $0 } == 0, "the refill's answer was lost")
        #expect(failed == 0, "the request was decided per request while the refill ran")
        // The next refill settles the unconfirmed lease; then top-ups lose their answers too.
        for _ in 0..<40 {
            try await consume()
            if admitted == 20 { store.losing.withLock { $0 = 2 } }
        }
        await leases.settle()
        await leases.returnAll()
        let window = try #require(try await sqlite.get(path("quotas/acct_hot"))?.decode(QuotaWindow.self))
        #expect(admitted >= 38 && store.losing.withLock { $0 } == 0, "the lost answers happened, and the rest was admitted")
        #expect(window.used == admitted, "every unit granted and not spent went back")
        #expect(window.leases?.isEmpty ?? true)
    }

    /// On SIGTERM a grant still under way is awaited and returned too. A request deciding
    /// per request starts a grant in the background and is answered before it lands;
    /// returning only what was held let that block land afterwards, stranded until the
    /// sweep an hour later and counted as spent.
    @Test func returningEverything_awaitsAGrantUnderWay_andReturnsItsBlock() async throws {
        let cloud = try await Instances(count: 1, limit: 10_000)
        var admitted: Int64 = 0
        for _ in 0..<20 {
            // After a return the account decides per request until a count finds a block
            // free; the next request then starts a grant and is itself decided per request.
            for _ in 0..<2 where try await cloud.consume(0) { admitted += 1 }
            await cloud.leases[0].returnAll()
            let window = try await cloud.window
            #expect(window.used == admitted, "no block left out of the return")
            #expect(window.leases?.isEmpty ?? true)
        }
        #expect(admitted == 40)
    }

    /// An instance that comes back after its lease expired, before anyone swept it, returns
    /// what it did not spend: an account served now and then strands nothing.
    @Test func anIdleHolder_returnsItsOwnExpiredLease_soNothingIsStranded() async throws {
        let cloud = try await Instances(count: 1, limit: 1_000)
        #expect(try await cloud.consume(0))
        for _ in 0..<3 {
            cloud.clock.advance(seconds: 10 * LeasePolicy().ttlSeconds)
            #expect(try await cloud.consume(0))
        }
        await cloud.leases[0].returnAll()
        #expect(try await cloud.window.used == 4)
    }

    /// An expired lease is not swept by other instances while its holder may come back: an
    /// account served now and then by many instances strands nothing.
    @Test func anotherInstance_leavesAnExpiredLeaseForItsHolderToReturn() async throws {
        let cloud = try await Instances(count: 2, limit: 1_000)
        #expect(try await cloud.consume(0))
        cloud.clock.advance(seconds: 2 * LeasePolicy().ttlSeconds)
        #expect(try await cloud.consume(1))
        cloud.clock.advance(seconds: 2 * LeasePolicy().ttlSeconds)
        #expect(try await cloud.consume(0))
        for leases in cloud.leases { await leases.returnAll() }
        #expect(try await cloud.window.used == 3)
    }

    /// Once a window is used up and no lease is left to return units, refusals come from
    /// memory (not one transaction each, which is what made refusals slow above the limit);
    /// a raised limit reaches them through `entitlements-changed`.
    @Test func aUsedUpWindow_isRefusedFromMemory_untilTheEntitlementsChange() async throws {
        let cloud = try await Instances(count: 1, limit: 20)
        var admitted = 0
        for _ in 0..<30 where try await cloud.consume(0) { admitted += 1 }
        #expect(admitted == 20)
        try await cloud.setLimit(25)
        cloud.clock.advance(seconds: 5)
        #expect(try await !cloud.consume(0), "refused from memory: the store was not read")
        cloud.leases[0].invalidate("acct_hot")
        for _ in 0..<10 where try await cloud.consume(0) { admitted += 1 }
        #expect(admitted == 25)
    }

    /// Used up while another instance still holds a lease: refusals come from memory, and
    /// the units that holder returns are admitted by the instance deciding its last units.
    @Test func aUsedUpWindow_withALeaseOutstanding_admitsTheUnitsItsHolderReturns() async throws {
        let cloud = try await Instances(count: 2, limit: 40)
        #expect(try await cloud.consume(1))
        await cloud.leases[1].settle()
        var admitted = 1
        for _ in 0..<60 where try await cloud.consume(0) { admitted += 1 }
        let held = await cloud.held
        #expect(held > 0, "instance 1 still holds units")
        #expect(admitted + Int(held) == 40)
        #expect(try await !cloud.consume(0), "refused from memory while instance 1 holds units")
        await cloud.leases[1].returnAll()
        // A second on, the window is looked at again (by increments or a background read).
        cloud.clock.advance(seconds: 2)
        for _ in 0..<60 {
            if try await cloud.consume(0) { admitted += 1 }
            await cloud.leases[0].settle()
        }
        #expect(admitted == 40, "what instance 1 returned was admitted")
    }

    /// A request refused by its check (a feature the tier lacks) takes no lease and
    /// creates no window, as on the strict path.
    @Test func aRefusedRequest_takesNoLease_andCreatesNoWindow() async throws {
        let cloud = try await Instances(count: 1, limit: 1_000)
        let outcome = try await cloud.leases[0].consume(.init(cost: 1) { _ in false }, accountId: "acct_hot")
        let refused = if case .refused = outcome { true } else { false }
        #expect(refused)
        #expect(try await cloud.store.get(path("quotas/acct_hot")) == nil)
    }

    @Test func oneInstance_demandAboveTheLimit_admitsExactlyTheLimit_inAFewTransactions() async throws {
        let cloud = try await Instances(count: 1, limit: 100)
        var admitted = 0
        for _ in 0..<150 where try await cloud.consume(0) { admitted += 1 }
        #expect(admitted == 100)
        #expect(try await cloud.window.used == 100)
        #expect(await cloud.held == 0)
    }

    @Test(arguments: [1, 2, 3])
    func fourInstances_concurrently_neverPassTheLimit_andLoseNoUnit(seed: UInt64) async throws {
        let cloud = try await Instances(count: 4, limit: 1_000)
        var generator = SeededGenerator(seed: seed)
        let claims = (0..<1_300).map { _ in (Int.random(in: 0..<4, using: &generator), Int64.random(in: 1...3, using: &generator)) }
        let admitted = try await withThrowingTaskGroup(of: Int64.self) { group in
            for (instance, cost) in claims { group.addTask { try await cloud.consume(instance, cost: cost) ? cost : 0 } }
            return try await group.reduce(0, +)
        }
        let held = await cloud.held
        let window = try await cloud.window
        #expect(admitted <= 1_000)
        #expect(window.used <= 1_000)
        #expect(admitted + held == window.used, "every unit counted is admitted or held")
        // Held units come back on return; then demand reaches the limit exactly.
        for leases in cloud.leases { await leases.returnAll() }
        #expect(await cloud.held == 0)
        #expect(try await cloud.window.used == admitted)
        var more: Int64 = 0
        for index in 0..<2_000 where try await cloud.consume(index % 4) { more += 1 }
        #expect(admitted + more == 1_000)
    }

    /// A crashed holder's lease is never returned: its units stay counted (its spending is
    /// unknown), so the others under-admit by at most what it held, and never over-admit.
    @Test func aCrashedHolder_underAdmitsByAtMostWhatItHeld_andItsExpiredLeaseIsSweptAfterAnHour() async throws {
        let cloud = try await Instances(count: 2, limit: 100)
        #expect(try await cloud.consume(0))
        await cloud.leases[0].settle()
        let crashedHeld = cloud.leases[0].unspent()["acct_hot"] ?? 0
        #expect(crashedHeld > 0)
        var admitted = 1
        for _ in 0..<200 where try await cloud.consume(1) { admitted += 1 }
        #expect(admitted == 100 - Int(crashedHeld))
        cloud.clock.advance(seconds: LeasePolicy().ttlSeconds + LeasePolicy().clockMarginSeconds + 1)
        _ = try await cloud.consume(1)
        #expect(try await cloud.window.leases?["instance-0"] != nil, "an expired lease waits for its holder to return it")
        cloud.clock.advance(seconds: LeasePolicy().sweepAfterSeconds)
        // The window is used up (refused from memory): a raised limit makes the next request
        // take a lease again, whose transaction sweeps.
        cloud.leases[1].invalidate("acct_hot")
        _ = try await cloud.consume(1)
        await cloud.leases[1].settle()
        #expect(try await cloud.window.leases?["instance-0"] == nil, "an hour after expiry it is taken for a crashed holder's")
        #expect(try await cloud.window.used <= 100)
    }

    @Test func anUpgrade_raisesTheLimitAtOnce_forAnInstanceHoldingALease() async throws {
        let cloud = try await Instances(count: 1, limit: 50)
        var admitted = 0
        for _ in 0..<80 where try await cloud.consume(0) { admitted += 1 }
        #expect(admitted == 50)
        try await cloud.setLimit(120)
        cloud.leases[0].invalidate("acct_hot")
        // Past the one second of per-request decisions that followed exhaustion.
        cloud.clock.advance(seconds: 2)
        for _ in 0..<100 where try await cloud.consume(0) { admitted += 1 }
        #expect(admitted == 120)
    }

    @Test func aSuspendedAccount_isRefused_fromTheLeasesAccountOnceInvalidated() async throws {
        let cloud = try await Instances(count: 1, limit: 50)
        #expect(try await cloud.consume(0))
        var account = try #require(try await cloud.store.get(path("accounts/acct_hot"))?.decode(Account.self))
        account.entitlements.enabled = false
        try await cloud.store.set(path("accounts/acct_hot"), try FieldValueEncoder().encode(account))
        cloud.leases[0].invalidate("acct_hot")
        let outcome = try await cloud.leases[0].consume(.init(cost: 1) { $0.entitlements.enabled }, accountId: "acct_hot")
        let refused = if case .refused = outcome { true } else { false }
        #expect(refused, "a suspended account is refused, not \(outcome)")
        #expect(try await cloud.window.used == 1, "the held units were returned when the lease was refreshed")
    }
}
