import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

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
