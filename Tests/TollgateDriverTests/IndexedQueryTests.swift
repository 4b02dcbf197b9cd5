import Foundation
import Testing
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// The fake's indexed range queries give exactly what the full scan gives.
@Suite struct IndexedQueryTests {
    @Test(arguments: [1, 2, 3])
    func indexedRangeQuery_matchesTheFullScan_withMixedTypesTiesAndCursors(seed: Int) async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        var writes: [Write] = []
        var documents: [DocumentSnapshot] = []
        let base: Int64 = 1_767_225_600
        for index in 0..<400 {
            let path = try DocumentPath(collection: "usage", id: "d\((index * 7919 + seed) % 1_000)")
            var fields: [String: FieldValue] = ["n": .integer(Int64(index))]
            switch (index + seed) % 6 {
            case 0: fields["recorded"] = .string("2026-01-01T00:00:00Z")  // a string, not a timestamp
            case 1: fields["recorded"] = .integer(base)
            case 2: break  // missing
            case 3: fields["recorded"] = .timestamp(Timestamp(secondsSinceEpoch: base + Int64(index % 5)))  // whole seconds, ties
            default:
                fields["recorded"] = .timestamp(
                    Timestamp(microsecondsSinceEpoch: (base + Int64(index % 9)) * 1_000_000 + Int64(index % 3) * 250_000))
            }
            writes.append(Write.set(path, fields))
            documents.append(
                DocumentSnapshot(
                    path: path, fields: fields, createTime: .init(secondsSinceEpoch: 0), updateTime: .init(secondsSinceEpoch: 0)))
        }
        try await store.commit(Array(writes.prefix(300)))
        try await store.commit(Array(writes.dropFirst(300)))
        let low = FieldValue.timestamp(Timestamp(secondsSinceEpoch: base + 1))
        let high = FieldValue.timestamp(Timestamp(secondsSinceEpoch: base + 7))
        let query = DocumentQuery(collection: "usage").filter("recorded", .greaterThanOrEqual, low).filter("recorded", .lessThan, high)
            .order(by: "recorded").limit(17)
        // Page through both ways; compare the pages.
        var cursor: DocumentSnapshot?
        var expectedCursor: DocumentSnapshot?
        var pages = 0
        repeat {
            let paged = cursor.map { query.start(after: $0) } ?? query
            let expectedPaged = expectedCursor.map { query.start(after: $0) } ?? query
            let page = try await store.query(paged)
            let expected = expectedPaged.arrange(documents.filter { expectedPaged.matches($0.fields) })
            #expect(page.map(\.path) == expected.map(\.path), "page \(pages)")
            cursor = page.last
            expectedCursor = expected.last
            pages += 1
        } while cursor != nil && pages < 100
        #expect(pages > 3)
    }
}
