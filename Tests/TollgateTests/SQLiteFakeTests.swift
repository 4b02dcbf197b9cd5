import Foundation
import Testing
import TollgateModel
import TollgateSQLite

/// The document store fake enforces Firestore's semantics and limits.
@Suite struct SQLiteDocumentStoreTests {
    let store: SQLiteDocumentStore
    init() throws { store = SQLiteDocumentStore(try temporaryDatabase()) }

    @Test func create_whenDocumentExists_throwsAlreadyExists() async throws {
        try await store.create(path("accounts/a"), ["n": .integer(1)])
        await expectCode(.alreadyExists) { try await store.create(path("accounts/a"), ["n": .integer(2)]) }
        #expect(try await store.get(path("accounts/a"))?.fields["n"] == .integer(1))
    }

    @Test func update_whenDocumentIsMissing_throwsNotFound() async throws {
        await expectCode(.notFound) { try await store.update(path("accounts/none"), ["n": .integer(1)]) }
    }

    @Test func update_withStaleUpdateTime_throwsFailedPrecondition() async throws {
        let first = try await store.set(path("accounts/a"), ["n": .integer(1)])
        let second = try await store.update(path("accounts/a"), ["n": .integer(2)], lastUpdate: first)
        #expect(second > first, "update times strictly increase")
        await expectCode(.failedPrecondition) { try await store.update(path("accounts/a"), ["n": .integer(3)], lastUpdate: first) }
    }

    @Test func update_setsDottedPathsAndDeletesWithNil() async throws {
        try await store.set(path("accounts/a"), ["quota": .map(["used": .integer(1), "limit": .integer(9)]), "old": .bool(true)])
        let changes: [FieldPath: FieldValue?] = ["quota.used": .integer(2), "old": nil]
        try await store.update(path("accounts/a"), changes)
        let fields = try await store.get(path("accounts/a"))?.fields
        #expect(fields == ["quota": .map(["used": .integer(2), "limit": .integer(9)])])
    }

    @Test func commit_withMoreThan500Writes_throwsInvalidArgument_andWritesNothing() async throws {
        let writes = (0...500).map { Write.set(path("bulk/d\($0)"), ["i": .integer(Int64($0))]) }
        await expectCode(.invalidArgument) { try await store.commit(writes) }
        #expect(try await store.query(DocumentQuery(collection: "bulk")).isEmpty)
        try await store.commit(Array(writes.prefix(500)))
        #expect(try await store.query(DocumentQuery(collection: "bulk")).count == 500)
    }

    @Test func commit_isAtomic_whenOneWriteFails() async throws {
        try await store.create(path("accounts/taken"), [:])
        await expectCode(.alreadyExists) {
            try await store.commit([.set(path("accounts/new"), ["x": .integer(1)]), .create(path("accounts/taken"), [:])])
        }
        #expect(try await store.get(path("accounts/new")) == nil)
    }

    @Test func set_documentOver1MiB_throwsInvalidArgument() async throws {
        let big = String(repeating: "x", count: 1_048_576)
        await expectCode(.invalidArgument) { try await store.set(path("accounts/big"), ["blob": .string(big)]) }
        try await store.set(path("accounts/fits"), ["blob": .string(String(repeating: "x", count: 1_000_000))])
    }

    @Test(arguments: ["accounts", "accounts/a/b", "accounts/..", "accounts/__reserved__", "/accounts/a"])
    func documentPath_refusesWhatFirestoreRefuses(_ text: String) async {
        await expectCode(.invalidArgument) { try DocumentPath(text) }
    }

    @Test func transaction_readAfterWrite_throwsInvalidArgument() async throws {
        await expectCode(.invalidArgument) {
            try await store.runTransaction { transaction in
                try transaction.set(path("accounts/a"), [:])
                _ = try await transaction.get(path("accounts/b"))
            }
        }
        #expect(try await store.get(path("accounts/a")) == nil, "a failed transaction writes nothing")
    }

    @Test func transactions_underContention_areRetried_andLoseNoUpdate() async throws {
        try await store.set(path("counters/c"), ["n": .integer(0)])
        let store = self.store
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

    @Test func transaction_whoseReadChanged_isAborted_whenAttemptsRunOut() async throws {
        try await store.set(path("counters/c"), ["n": .integer(0)])
        let store = self.store
        await expectCode(.aborted) {
            try await store.runTransaction(maxAttempts: 1) { transaction in
                _ = try await transaction.get(path("counters/c"))
                try await store.set(path("counters/c"), ["n": .integer(99)])  // a concurrent writer
                try transaction.set(path("counters/c"), ["n": .integer(1)])
            }
        }
        #expect(try await store.get(path("counters/c"))?.fields["n"] == .integer(99))
    }

    @Test func increment_isAtomic_andSaturatesAt64Bits() async throws {
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<25 { group.addTask { try await store.increment(path("counters/c"), "n", by: 2) } }
            try await group.waitForAll()
        }
        #expect(try await store.get(path("counters/c"))?.fields["n"] == .integer(50))
        try await store.set(path("counters/max"), ["n": .integer(Int64.max - 1)])
        try await store.increment(path("counters/max"), "n", by: 10)
        #expect(try await store.get(path("counters/max"))?.fields["n"] == .integer(Int64.max))
    }

    @Test func query_filtersOrdersLimitsAndPagesWithCursors() async throws {
        for (id, units) in [("a", 5), ("b", 1), ("c", 9), ("d", 5), ("e", 7)] {
            try await store.set(path("usage/\(id)"), ["units": .integer(Int64(units)), "account": .string(id == "e" ? "x" : "y")])
        }
        try await store.set(path("usage/f"), ["account": .string("y")])  // no units: never matched nor ordered
        let query = DocumentQuery(collection: "usage").filter("account", .equal, .string("y")).filter(
            "units", .greaterThanOrEqual, .integer(5)
        )
        .order(by: "units").limit(2)
        let first = try await store.query(query)
        #expect(first.map(\.path.id) == ["a", "d"], "ties break on the document name")
        let second = try await store.query(query.start(after: first.last!))
        #expect(second.map(\.path.id) == ["c"])
        let descending = try await store.query(DocumentQuery(collection: "usage").order(by: "units", descending: true).limit(1))
        #expect(descending.map(\.path.id) == ["c"])
    }

    @Test func query_withInequalitiesOnTwoFields_throwsInvalidArgument() async {
        let query = DocumentQuery(collection: "usage").filter("a", .greaterThan, .integer(1)).filter("b", .lessThan, .integer(2))
        await expectCode(.invalidArgument) { try await store.query(query) }
    }
}

@Suite struct SQLiteOtherPortsTests {
    let database: SQLiteDatabase
    init() throws { database = try temporaryDatabase() }

    @Test func publish_toUnknownTopic_throwsNotFound() async throws {
        let publisher = SQLitePublisher(database)
        await expectCode(.notFound) { try await publisher.publish(OutgoingMessage(data: [1]), to: "nope") }
        try await publisher.createTopic("t")
        let id = try await publisher.publish(OutgoingMessage(data: [1], attributes: ["k": "v"], orderingKey: "a"), to: "t")
        #expect(try await publisher.published(topic: "t").map(\.messageId) == [id])
    }

    @Test func publish_emptyOrReservedAttributes_throwsInvalidArgument() async throws {
        let publisher = SQLitePublisher(database)
        try await publisher.createTopic("t")
        await expectCode(.invalidArgument) { try await publisher.publish(OutgoingMessage(data: []), to: "t") }
        await expectCode(.invalidArgument) {
            try await publisher.publish(OutgoingMessage(data: [1], attributes: ["googKey": "v"]), to: "t")
        }
    }

    @Test func blobWrite_ifGenerationMatchZero_createsOnlyOnce() async throws {
        let blobs = SQLiteBlobStore(database)
        let generation = try await blobs.write(
            "usage/2026/01/01/a.ndjson.gz", [1, 2], contentType: "application/gzip", ifGenerationMatch: 0)
        await expectCode(.failedPrecondition) {
            try await blobs.write("usage/2026/01/01/a.ndjson.gz", [3], contentType: "x", ifGenerationMatch: 0)
        }
        try await blobs.write("usage/2026/01/01/a.ndjson.gz", [3], contentType: "x", ifGenerationMatch: generation)
        #expect(try await blobs.read("usage/2026/01/01/a.ndjson.gz").data == [3])
        let page = try await blobs.list(prefix: "usage/2026/", pageSize: 10, pageToken: nil)
        #expect(page.names == ["usage/2026/01/01/a.ndjson.gz"])
    }

    @Test func enqueue_sameTaskNameTwice_throwsAlreadyExists() async throws {
        let tasks = SQLiteTaskQueue(database)
        let task = HTTPTask(name: "report-acct_1-2026-01-01", url: "http://localhost/usage-report", body: Array("{}".utf8))
        try await tasks.enqueue(task, queue: "usage-report")
        await expectCode(.alreadyExists) { try await tasks.enqueue(task, queue: "usage-report") }
        await expectCode(.invalidArgument) { try await tasks.enqueue(HTTPTask(name: "bad/name", url: "u", body: []), queue: "q") }
        #expect(try await tasks.tasks().count == 1)
    }
}

@Suite struct QuerySelectionTests {
    /// The streaming selection keeps exactly what sorting everything and cutting would.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func selection_equalsSortThenCursorThenLimit(seed: UInt64) throws {
        var generator = LinearGenerator(state: seed)
        let documents = try (0..<300).map { i in
            DocumentSnapshot(
                path: try DocumentPath("usage/d\(i)"),
                fields: ["units": .integer(Int64.random(in: 0..<20, using: &generator))],
                createTime: Timestamp(secondsSinceEpoch: 0), updateTime: Timestamp(secondsSinceEpoch: 0))
        }
        for descending in [false, true] {
            let base = DocumentQuery(collection: "usage").order(by: "units", descending: descending)
            let everything = base.arrange(documents)
            #expect(everything.count == 300)
            for (a, b) in zip(everything, everything.dropFirst()) {
                let c = FieldValue.compare(a.fields["units"]!, b.fields["units"]!)
                #expect(descending ? c >= 0 : c <= 0)
            }
            var pages: [DocumentSnapshot] = []
            var query = base.limit(7)
            while true {
                let page = query.arrange(documents.shuffled(using: &generator))
                if page.isEmpty { break }
                pages += page
                query = base.limit(7).start(after: page.last!)
            }
            #expect(pages.map(\.path) == everything.map(\.path), "paging with cursors walks the same order without gaps or repeats")
        }
    }
}

/// A tiny deterministic generator for test data.
struct LinearGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }
}
