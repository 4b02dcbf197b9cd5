import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@Suite struct FieldValueTests {
    struct Sample: Codable, Equatable {
        var name: String
        var count: Int64
        var ratio: Double
        var when: Timestamp
        var tags: [String]
        var nested: [String: Int]
        var optional: String?
        var tier: Tier
    }

    @Test func codable_roundTripsThroughDocumentFields_withFirestoreTypes() throws {
        let sample = Sample(
            name: "a", count: 5, ratio: 1.5, when: Timestamp(secondsSinceEpoch: 10), tags: ["x", "y"], nested: ["k": 1],
            optional: nil, tier: .pro)
        let fields = try FieldValueEncoder().encode(sample)
        #expect(fields["count"] == .integer(5))
        #expect(fields["ratio"] == .double(1.5))
        #expect(fields["when"] == .timestamp(Timestamp(secondsSinceEpoch: 10)))
        #expect(fields["optional"] == nil, "nil optionals are left out, as Firestore's SDKs do")
        #expect(try FieldValueDecoder().decode(Sample.self, from: fields) == sample)
    }

    @Test func restJSON_sendsIntegersAsStrings() throws {
        let json = String(decoding: try JSONEncoder().encode(FieldValue.integer(Int64.max)), as: UTF8.self)
        #expect(json == #"{"integerValue":"9223372036854775807"}"#)
        #expect(try JSONDecoder().decode(FieldValue.self, from: Data(json.utf8)) == .integer(Int64.max))
    }

    @Test func ordering_followsFirestoreTypeOrder() {
        let ordered: [FieldValue] = [
            .null, .bool(false), .bool(true), .double(.nan), .integer(-1), .double(0.5), .integer(1),
            .timestamp(Timestamp(secondsSinceEpoch: 0)), .string("a"), .bytes(Data([0])), .array([]), .map([:]),
        ]
        for (a, b) in zip(ordered, ordered.dropFirst()) { #expect(FieldValue.compare(a, b) < 0, "\(a) < \(b)") }
        #expect(FieldValue.compare(.integer(1), .double(1)) == 0)
    }
}
