import Synchronization
import Testing
import TollgateEmulator
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateQuota

/// Leases written without a transaction (docs/quota-leases.md): on a current window no
/// grant, top-up or return holds a lock across a round trip, and what the window counts
/// stays what was admitted plus what the holders hold.
@Suite struct LeaseWritesTests {
    /// Counts the transactions run through it; everything else goes straight to the store.
    final class CountingTransactions: DocumentStore, Sendable {
        let inner: any DocumentStore
        let transactions = Mutex(0)
        init(_ inner: any DocumentStore) { self.inner = inner }

        func get(_ path: DocumentPath) async throws -> DocumentSnapshot? { try await inner.get(path) }
        func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] { try await inner.query(query) }
        func commitWithResults(_ writes: [Write]) async throws -> CommitResult { try await inner.commitWithResults(writes) }
        func runTransaction<T: Sendable>(maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T) async throws -> T {
            transactions.withLock { $0 += 1 }
            return try await inner.runTransaction(maxAttempts: maxAttempts, body)
        }
    }

    struct Cloud {
        let sqlite: SQLiteDocumentStore
        let store: CountingTransactions
        let clock: VirtualClock
        let leases: [QuotaLeases]

        init(instances: Int, limit: Int64) async throws {
            clock = VirtualClock(start: Timestamp(rfc3339: "2026-03-10T12:00:00Z")!)
            sqlite = SQLiteDocumentStore(try temporaryDatabase(clock: clock))
            let entitlements = Entitlements(features: [], monthlyQuotaUnits: limit, maxNodes: 1, maxDimensions: 1)
            try await sqlite.set(
                path("accounts/acct_hot"),
                try FieldValueEncoder().encode(Account(id: "acct_hot", tier: .enterprise, entitlements: entitlements)))
            store = CountingTransactions(sqlite)
            let book = QuotaBook(store: store, period: .month, catalog: .standard)
            let clock = self.clock
            leases = (0..<instances).map { QuotaLeases(book: book, clock: clock, instance: "instance-\($0)") }
        }

        func consume(_ instance: Int) async throws -> Bool {
            if case .admitted = try await leases[instance].consume(.init(cost: 1) { _ in true }, accountId: "acct_hot") { return true }
            return false
        }

        var window: QuotaWindow {
            get async throws { try #require(try await sqlite.get(path("quotas/acct_hot"))?.decode(QuotaWindow.self)) }
        }

        var held: Int64 {
            get async {
                for leases in leases { await leases.settle() }
                return leases.map { $0.unspent()["acct_hot"] ?? 0 }.reduce(0, +)
            }
        }
    }

    /// Four instances take a new window from its creation past its limit and return what
    /// they hold: not one transaction, and exactly the limit admitted.
    @Test func grantsTopUpsReturnsAndTheWindowsCreation_takeNoTransaction() async throws {
        let cloud = try await Cloud(instances: 4, limit: 1_000)
        var admitted: Int64 = 0
        for request in 0..<1_300 {
            if try await cloud.consume(request % 4) { admitted += 1 }
            if request % 50 == 0 { cloud.clock.advance(seconds: 1) }
        }
        let window = try await cloud.window
        #expect(window.used == admitted + (await cloud.held), "the window counts what was admitted and what is held")
        for leases in cloud.leases { await leases.returnAll() }
        #expect(admitted == 1_000)
        #expect(try await cloud.window.used == 1_000)
        #expect(try await cloud.window.holders == 0, "the holder count went back to 0 with the last return")
        #expect(cloud.store.transactions.withLock { $0 } == 0)
    }

    /// The month ends: the instances that see it first write the next window on the
    /// condition that the ended one is unchanged, so exactly one of them rolls it over.
    @Test func aNewMonth_isRolledOverOnce_withoutATransaction() async throws {
        let cloud = try await Cloud(instances: 3, limit: 1_000)
        for instance in 0..<3 { #expect(try await cloud.consume(instance)) }
        cloud.clock.advance(seconds: 25 * 24 * 3_600)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for instance in 0..<3 { group.addTask { try await cloud.consume(instance) } }
            for try await admitted in group { #expect(admitted) }
        }
        let window = try await cloud.window
        #expect(window.start == Timestamp(rfc3339: "2026-04-01T00:00:00Z"))
        #expect(window.used == 3 + (await cloud.held), "April counts April's requests only")
        #expect(cloud.store.transactions.withLock { $0 } == 0)
    }

    /// Near the end a holder that keeps units from an earlier, larger block looks at the
    /// window and gives back what it would no longer be granted, so the instance deciding
    /// the last units per request is not refused while they sit in a lease.
    @Test func aHolderNearTheEnd_givesBackWhatTheWindowWouldNoLongerGrantIt() async throws {
        let cloud = try await Cloud(instances: 2, limit: 1_000)
        // Instance 1 runs the window near its end; then instance 0 takes a block.
        #expect(try await cloud.consume(1))
        var admitted: Int64 = 1
        while try await cloud.window.limit - cloud.window.used > 300, try await cloud.consume(1) { admitted += 1 }
        #expect(try await cloud.consume(0))
        admitted += 1
        await cloud.leases[0].settle()
        let before = cloud.leases[0].unspent()["acct_hot"] ?? 0
        #expect(before > 1)
        // Instance 1 runs it into its reserve, which the block could outlast.
        while try await cloud.window.limit - cloud.window.used > 90, try await cloud.consume(1) { admitted += 1 }
        cloud.clock.advance(seconds: 2)
        #expect(try await cloud.consume(0))
        admitted += 1
        await cloud.leases[0].settle()
        let after = cloud.leases[0].unspent()["acct_hot"] ?? 0
        #expect(after < before - 1, "it gave units back (\(before) held, \(after) kept)")
        // Instance 1 now admits up to the limit, what was given back included.
        while try await cloud.consume(1) { admitted += 1 }
        #expect(admitted + (await cloud.held) == 1_000)
        #expect(try await cloud.window.used == 1_000)
    }

    /// A lease entry changed behind its holder's back (here, swept as a crashed holder's
    /// would be) is not written without a transaction: the holder's next refill finds it
    /// is not what it knows and settles it by transaction, and the window still counts
    /// exactly what was admitted and what is held.
    @Test func aLeaseNotAsItsHolderKnowsIt_isSettledByTransaction() async throws {
        let cloud = try await Cloud(instances: 1, limit: 1_000)
        var admitted: Int64 = 0
        for _ in 0..<5 where try await cloud.consume(0) { admitted += 1 }
        await cloud.leases[0].settle()
        // The entry goes, and with it the units it held: they count as spent.
        try await cloud.sqlite.update(path("quotas/acct_hot"), ["leases.instance-0": nil, "holders": .integer(0)])
        let stranded = await cloud.held
        cloud.clock.advance(seconds: 2 * LeasePolicy().ttlSeconds)
        for _ in 0..<5 where try await cloud.consume(0) { admitted += 1 }
        await cloud.leases[0].settle()
        #expect(admitted == 10)
        #expect(cloud.store.transactions.withLock { $0 } >= 1, "the refill went by transaction")
        #expect(try await cloud.window.used == admitted + stranded + (await cloud.held))
        #expect(try await cloud.window.holders == 1)
    }
}
