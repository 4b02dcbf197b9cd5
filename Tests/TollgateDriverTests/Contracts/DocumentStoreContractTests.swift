import Foundation
import Synchronization
import Testing
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// Where the `DocumentStore` contract runs: the SQLite fake on a file (a pool of readers
/// beside one writer, as `replay` and `serve` use it) and in memory (one serial
/// connection, as the fuzz targets use it), and the Firestore driver against Google's own
/// Firestore emulator (each case in a project of its own). `FirestoreDriverTests` also
/// checks each of the driver's requests against Firestore's discovery document.
enum DocumentBackend: String, ContractBackend {
    case sqliteFile
    case sqliteMemory
    case firestoreEmulator

    enum Capability: Hashable, Sendable {}

    var testDescription: String { rawValue }
    var capabilities: Set<Capability> { [] }
    var peer: Peer? { self == .firestoreEmulator ? .firestoreEmulator : nil }

    func open() async throws -> ContractInstance<any DocumentStore> {
        switch self {
        case .sqliteFile: return ContractInstance(SQLiteDocumentStore(try temporaryDatabase()))
        case .sqliteMemory: return ContractInstance(SQLiteDocumentStore(try SQLiteDatabase(path: ":memory:")))
        case .firestoreEmulator:
            let lease = try await GoogleEmulator.firestore.acquire()
            let cloud = GoogleCloud(environment: ["FIRESTORE_EMULATOR_HOST": lease.host])
            do {
                return ContractInstance(try cloud.firestore("firestore://\(lease.project)")) { lease.release() }
            } catch {
                lease.release()
                throw error
            }
        }
    }
}

/// The `DocumentStore` port's contract: Firestore's semantics, on every backend. Each
/// case names the Firestore behaviour it holds the backend to.
@Suite struct DocumentStoreContractTests {
    // MARK: Writes and preconditions

    @Test(arguments: DocumentBackend.supporting())
    func create_whenTheDocumentExists_isAlreadyExists_andChangesNothing(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.create(path("accounts/a"), ["n": .integer(1)])
            await expectCode(.alreadyExists) { try await store.create(path("accounts/a"), ["n": .integer(2)]) }
            #expect(try await store.get(path("accounts/a"))?.fields == ["n": .integer(1)])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func set_replacesTheWholeDocument_keepingItsCreateTime(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let created = try await store.set(path("accounts/a"), ["n": .integer(1), "old": .bool(true)])
            let replaced = try await store.set(path("accounts/a"), ["n": .integer(2)])
            let snapshot = try #require(try await store.get(path("accounts/a")))
            #expect(snapshot.fields == ["n": .integer(2)])
            #expect(snapshot.createTime == created && snapshot.updateTime == replaced && replaced > created)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func update_ofAMissingDocument_isNotFound_andCreatesNothing(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            await expectCode(.notFound) { try await store.update(path("accounts/none"), ["n": .integer(1)]) }
            let after = try await store.get(path("accounts/none"))
            #expect(after == nil)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func update_withAStaleUpdateTime_isFailedPrecondition(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let first = try await store.set(path("accounts/a"), ["n": .integer(1)])
            let second = try await store.update(path("accounts/a"), ["n": .integer(2)], lastUpdate: first)
            #expect(second > first, "update times strictly increase")
            await expectCode(.failedPrecondition) { try await store.update(path("accounts/a"), ["n": .integer(3)], lastUpdate: first) }
            #expect(try await store.get(path("accounts/a"))?.fields["n"] == .integer(2))
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func update_setsDottedPaths_andNilDeletesAField(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("accounts/a"), ["quota": .map(["used": .integer(1), "limit": .integer(9)]), "old": .bool(true)])
            try await store.update(path("accounts/a"), ["quota.used": .integer(2), "old": nil, "added.deep": .string("x")])
            #expect(
                try await store.get(path("accounts/a"))?.fields == [
                    "quota": .map(["used": .integer(2), "limit": .integer(9)]), "added": .map(["deep": .string("x")]),
                ])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func delete_ofAMissingDocument_succeeds_unlessItMustExist(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.delete(path("accounts/none"))
            await expectCode(.notFound) { try await store.delete(path("accounts/none"), precondition: .exists(true)) }
            let written = try await store.set(path("accounts/a"), [:])
            await expectCode(.failedPrecondition) {
                try await store.delete(path("accounts/a"), precondition: .updateTime(written.adding(seconds: -1)))
            }
            try await store.delete(path("accounts/a"), precondition: .updateTime(written))
            #expect(try await store.get(path("accounts/a")) == nil)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func commit_ofMoreThan500Writes_isInvalidArgument_andWritesNothing(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let writes = (0...500).map { Write.set(path("bulk/d\($0)"), ["i": .integer(Int64($0))]) }
            await expectCode(.invalidArgument) { try await store.commit(writes) }
            #expect(try await store.query(DocumentQuery(collection: "bulk")).isEmpty)
            try await store.commit(Array(writes.prefix(500)))
            #expect(try await store.query(DocumentQuery(collection: "bulk")).count == 500)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func commit_isAtomic_whenOneWriteFails(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.create(path("accounts/taken"), [:])
            await expectCode(.alreadyExists) {
                try await store.commit([.set(path("accounts/new"), ["x": .integer(1)]), .create(path("accounts/taken"), [:])])
            }
            #expect(try await store.get(path("accounts/new")) == nil)
        }
    }

    /// Every write of a commit gets the commit time as its update time. `REQUEST_TIME` is
    /// documented as the time the server processed the request, with millisecond precision,
    /// the same for every field of the request: Google's emulator takes it when the
    /// request arrives (before the commit time), the SQLite fake takes the commit time.
    @Test(arguments: DocumentBackend.supporting())
    func commit_stampsEveryWriteWithTheCommitTime_andRequestTimeInMilliseconds(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let time = try await store.commit([
                .set(path("a/1"), [:]), Write(path: path("a/2"), operation: .set([:]), transforms: [.serverTimestamp("at")]),
                Write(path: path("a/3"), operation: .set([:]), transforms: [.serverTimestamp("at")]),
            ])
            #expect(try await store.get(path("a/1"))?.updateTime == time)
            let second = try #require(try await store.get(path("a/2")))
            #expect(second.updateTime == time)
            guard case .timestamp(let stamped)? = second.fields["at"] else {
                Issue.record("REQUEST_TIME wrote no timestamp: \(second.fields)")
                return
            }
            #expect(stamped.microsecondsSinceEpoch % 1_000 == 0, "milliseconds")
            #expect(stamped <= time && time.microsecondsSinceEpoch - stamped.microsecondsSinceEpoch < 1_000_000)
            #expect(try await store.get(path("a/3"))?.fields["at"] == .timestamp(stamped), "one time for the whole request")
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func aDocumentOver1MiB_isInvalidArgument(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            await expectCode(.invalidArgument) {
                try await store.set(path("accounts/big"), ["blob": .string(String(repeating: "x", count: 1_048_576))])
            }
            #expect(try await store.get(path("accounts/big")) == nil)
            try await store.set(path("accounts/fits"), ["blob": .string(String(repeating: "x", count: 1_000_000))])
        }
    }

    // MARK: Transforms

    @Test(arguments: DocumentBackend.supporting())
    func increment_isAtomicUnderConcurrency_andSaturatesAt64Bits(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<25 { group.addTask { try await store.increment(path("counters/c"), "n", by: 2) } }
                try await group.waitForAll()
            }
            #expect(try await store.get(path("counters/c"))?.fields["n"] == .integer(50), "created by the first increment")
            try await store.set(path("counters/max"), ["n": .integer(Int64.max - 1), "m": .integer(Int64.min + 1)])
            try await store.increment(path("counters/max"), "n", by: 10)
            try await store.increment(path("counters/max"), "m", by: -10)
            #expect(try await store.get(path("counters/max"))?.fields == ["n": .integer(Int64.max), "m": .integer(Int64.min)])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func increment_ofANonNumber_setsTheValue_andMixingADouble_givesADouble(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("counters/c"), ["text": .string("x"), "n": .integer(1)])
            try await store.commit([
                Write(
                    path: path("counters/c"), operation: .update([:]),
                    transforms: [.increment("text", .integer(5)), .increment("n", .double(0.5))])
            ])
            #expect(try await store.get(path("counters/c"))?.fields == ["text": .integer(5), "n": .double(1.5)])
        }
    }

    /// Firestore's `WriteResult.transformResults`: each transform's field after the write,
    /// in order, so an increment by 0 reads a field in the same atomic step; concurrent
    /// increments each see a distinct total (what a fetch-and-add needs).
    @Test(arguments: DocumentBackend.supporting())
    func commit_answersEachTransformsResult_andConcurrentIncrementsSeeDistinctTotals(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("quotas/q"), ["used": .integer(5), "limit": .integer(100), "note": .string("x")])
            let answer = try await store.commitWithResults([
                .update(
                    path("quotas/q"), ["note": .string("y")],
                    transforms: [.increment("used", .integer(3)), .increment("limit", .integer(0))]),
                .set(path("quotas/r"), ["plain": .bool(true)]),
            ])
            #expect(answer.transformResults == [[.integer(8), .integer(100)], []])
            let totals = Recorder<Int64>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let result = try await store.commitWithResults([
                            .update(path("quotas/q"), [:], transforms: [.increment("used", .integer(1))])
                        ])
                        if case .integer(let total) = result.transformResults[0][0] { totals.append(total) }
                    }
                }
                try await group.waitForAll()
            }
            #expect(totals.all.sorted() == Array(9...28), "every increment saw its own total")
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func maximumAndMinimum_keepTheGreaterAndTheLesser_andSetAMissingField(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("w/1"), ["high": .integer(5), "low": .integer(5)])
            let transforms: [Write.Transform] = [
                .maximum("high", .integer(3)), .minimum("low", .integer(3)), .maximum("fresh", .integer(7)),
            ]
            try await store.commit([Write(path: path("w/1"), operation: .update([:]), transforms: transforms)])
            #expect(try await store.get(path("w/1"))?.fields == ["high": .integer(5), "low": .integer(3), "fresh": .integer(7)])
        }
    }

    // MARK: Queries

    static func seedUsage(_ store: any DocumentStore) async throws {
        for (id, units) in [("a", 5), ("b", 1), ("c", 9), ("d", 5), ("e", 7)] {
            try await store.set(path("usage/\(id)"), ["units": .integer(Int64(units)), "account": .string(id == "e" ? "x" : "y")])
        }
        try await store.set(path("usage/f"), ["account": .string("y")])  // no units: never matched nor ordered
        try await store.set(path("usage/g"), ["units": .null, "account": .string("y")])
    }

    @Test(arguments: DocumentBackend.supporting())
    func query_filtersOrdersLimits_andPagesWithCursors_tiesBrokenByName(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await Self.seedUsage(store)
            let query = DocumentQuery(collection: "usage").filter("account", .equal, .string("y"))
                .filter("units", .greaterThanOrEqual, .integer(5)).order(by: "units").limit(2)
            let first = try await store.query(query)
            #expect(first.map(\.path.id) == ["a", "d"])
            let second = try await store.query(query.start(after: try #require(first.last)))
            #expect(second.map(\.path.id) == ["c"])
            let descending = try await store.query(DocumentQuery(collection: "usage").order(by: "units", descending: true).limit(2))
            #expect(descending.map(\.path.id) == ["c", "e"])
        }
    }

    /// Google's Firestore emulator refuses a scan of document names in descending order
    /// ("does not support descending key scans"); a field ordered first, with the name as
    /// its tie-break in either direction, is served. The fakes refuse the same.
    @Test(arguments: DocumentBackend.supporting())
    func orderByNameDescending_isFailedPrecondition_butAfterAFieldIsServed(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await Self.seedUsage(store)
            await expectCode(.failedPrecondition) {
                _ = try await store.query(DocumentQuery(collection: "usage").order(by: "__name__", descending: true).limit(1))
            }
            let latest = try await store.query(
                DocumentQuery(collection: "usage").order(by: "units", descending: true).order(by: "__name__", descending: true).limit(1))
            #expect(latest.map(\.path.id) == ["c"])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func orderBy_leavesOutDocumentsWithoutTheField_andNullSortsFirst(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await Self.seedUsage(store)
            let ordered = try await store.query(DocumentQuery(collection: "usage").order(by: "units"))
            #expect(ordered.map(\.path.id) == ["g", "b", "a", "d", "e", "c"])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func notEqual_matchesNeitherNullNorAMissingField(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await Self.seedUsage(store)
            let query = DocumentQuery(collection: "usage").filter("units", .notEqual, .integer(5))
            #expect(try await store.query(query).map(\.path.id) == ["b", "e", "c"], "ordered by the inequality field first")
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func inAndArrayContains_matchAnyListedValue_andAnElement(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await Self.seedUsage(store)
            try await store.set(path("usage/h"), ["tags": .array([.string("beta"), .string("eu")])])
            let listed = DocumentQuery(collection: "usage").filter("units", .in, .array([.integer(1), .integer(9)]))
            #expect(try await store.query(listed).map(\.path.id) == ["b", "c"])
            let tagged = DocumentQuery(collection: "usage").filter("tags", .arrayContains, .string("eu"))
            #expect(try await store.query(tagged).map(\.path.id) == ["h"])
            let tooMany = DocumentQuery(collection: "usage").filter("units", .in, .array((0..<31).map { .integer(Int64($0)) }))
            await expectCode(.invalidArgument) { try await store.query(tooMany) }
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func aCollectionQuery_seesItsOwnDocumentsOnly_notSubcollectionsOrPrefixes(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("accounts/a1"), ["n": .integer(1)])
            try await store.set(path("accounts/a1/keys/k1"), ["n": .integer(2)])
            try await store.set(path("accountsX/b"), ["n": .integer(3)])
            #expect(try await store.query(DocumentQuery(collection: "accounts")).map(\.path.description) == ["accounts/a1"])
            #expect(try await store.query(DocumentQuery(collection: "accounts/a1/keys")).map(\.path.description) == ["accounts/a1/keys/k1"])
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func inequalitiesOnTwoFields_orAnUnorderedInequalityField_areInvalidArgument(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let twoFields = DocumentQuery(collection: "usage").filter("a", .greaterThan, .integer(1)).filter("b", .lessThan, .integer(2))
            await expectCode(.invalidArgument) { try await store.query(twoFields) }
            let orderedElsewhere = DocumentQuery(collection: "usage").filter("a", .greaterThan, .integer(1)).order(by: "b")
            await expectCode(.invalidArgument) { try await store.query(orderedElsewhere) }
        }
    }

    // MARK: Transactions

    @Test(arguments: DocumentBackend.supporting())
    func transaction_readAfterWrite_isInvalidArgument_andWritesNothing(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            await expectCode(.invalidArgument) {
                try await store.runTransaction { transaction in
                    try transaction.set(path("accounts/a"), [:])
                    _ = try await transaction.get(path("accounts/b"))
                }
            }
            let after = try await store.get(path("accounts/a"))
            #expect(after == nil)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func transaction_whoseBodyThrows_writesNothing_andTheErrorReachesTheCaller(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            await expectCode(.failedPrecondition) {
                try await store.runTransaction { transaction in
                    try transaction.set(path("accounts/a"), ["n": .integer(1)])
                    throw TollgateError(.failedPrecondition, "the body gave up")
                }
            }
            let after = try await store.get(path("accounts/a"))
            #expect(after == nil)
        }
    }

    @Test(arguments: DocumentBackend.supporting())
    func transactions_underContention_areRetried_andLoseNoUpdate(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("counters/c"), ["n": .integer(0)])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        try await store.runTransaction(maxAttempts: 50) { transaction in
                            let current = try await transaction.get(path("counters/c"))?.fields["n"]
                            guard case .integer(let n) = current else { throw TollgateError(.internal, "missing") }
                            try await Task.sleep(for: .milliseconds(1))
                            try transaction.set(path("counters/c"), ["n": .integer(n + 1)])
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.get(path("counters/c"))?.fields["n"] == .integer(20))
        }
    }

    /// A write to what a transaction read, while it runs: never both commit. Firestore
    /// locks what a transaction reads (pessimistic; Google's emulator holds the writer 2 s,
    /// then aborts it) and the transaction commits; the SQLite fake checks the read at
    /// commit (optimistic) and aborts the transaction once its attempts run out. Either
    /// way the document holds exactly one of the two values, never a lost update.
    @Test(arguments: DocumentBackend.supporting())
    func aWriteToWhatATransactionRead_andTheTransaction_neverBothCommit(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            try await store.set(path("counters/c"), ["n": .integer(0)])
            let writer = Mutex<TollgateError.Code?>(nil)
            let transaction = await outcome {
                try await store.runTransaction(maxAttempts: 1) { transaction in
                    _ = try await transaction.get(path("counters/c"))
                    do {
                        try await store.set(path("counters/c"), ["n": .integer(99)])  // a concurrent writer
                    } catch let error as TollgateError {
                        writer.withLock { $0 = error.code }
                    }
                    try transaction.set(path("counters/c"), ["n": .integer(1)])
                }
            }
            let stored = try await store.get(path("counters/c"))?.fields["n"]
            switch (writer.withLock { $0 }, transaction) {
            case (nil, .failure(let error)):
                #expect((error as? TollgateError)?.code == .aborted, "\(error)")
                #expect(stored == .integer(99), "the writer won; the transaction wrote nothing")
            case (.aborted?, .success):
                #expect(stored == .integer(1), "the transaction held its read; the writer wrote nothing")
            case let (code, outcome):
                Issue.record(
                    "both or neither committed: writer \(String(describing: code)), transaction \(outcome), stored \(String(describing: stored))"
                )
            }
        }
    }

    /// A transaction that read a missing document, and another writer that creates it
    /// meanwhile: never both (as above: Firestore aborts the writer, the fake the
    /// transaction).
    @Test(arguments: DocumentBackend.supporting())
    func aCreateOfWhatATransactionFoundMissing_andTheTransaction_neverBothCommit(_ backend: DocumentBackend) async throws {
        try await backend.with { store in
            let writer = Mutex<TollgateError.Code?>(nil)
            let transaction = await outcome {
                try await store.runTransaction(maxAttempts: 1) { transaction in
                    #expect(try await transaction.get(path("accounts/new")) == nil)
                    do {
                        try await store.create(path("accounts/new"), ["by": .string("the other writer")])
                    } catch let error as TollgateError {
                        writer.withLock { $0 = error.code }
                    }
                    try transaction.create(path("accounts/new"), ["by": .string("the transaction")])
                }
            }
            let stored = try await store.get(path("accounts/new"))?.fields["by"]
            switch (writer.withLock { $0 }, transaction) {
            case (nil, .failure(let error)):
                #expect((error as? TollgateError)?.code == .aborted, "\(error)")
                #expect(stored == .string("the other writer"))
            case (.aborted?, .success):
                #expect(stored == .string("the transaction"))
            case let (code, outcome):
                Issue.record(
                    "both or neither committed: writer \(String(describing: code)), transaction \(outcome), stored \(String(describing: stored))"
                )
            }
        }
    }
}

/// What `body` returned or threw.
private func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
