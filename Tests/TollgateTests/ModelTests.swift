import Foundation
import Testing
import TollgateModel

@Suite struct TimestampTests {
    @Test func rfc3339_roundTripsWholeSecondsAndMicroseconds() {
        #expect(Timestamp(secondsSinceEpoch: 1_767_225_600).rfc3339 == "2026-01-01T00:00:00Z")
        let precise = Timestamp(microsecondsSinceEpoch: 1_767_225_600_250_001)
        #expect(precise.rfc3339 == "2026-01-01T00:00:00.250001Z")
        #expect(Timestamp(rfc3339: precise.rfc3339) == precise)
    }

    @Test func rfc3339_acceptsOffsetsAndNanoseconds_truncatingToMicroseconds() {
        #expect(Timestamp(rfc3339: "2026-01-01T01:00:00+01:00") == Timestamp(secondsSinceEpoch: 1_767_225_600))
        #expect(Timestamp(rfc3339: "2014-10-02T15:01:23.045123456Z")?.microsecondsSinceEpoch == 1_412_262_083_045_123)
    }

    @Test(arguments: ["", "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00Zjunk"])
    func rfc3339_refusesMalformedText(_ text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test func beforeTheEpoch_rendersCorrectly() {
        #expect(Timestamp(microsecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
    }
}

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

@Suite struct TriggerPayloadTests {
    @Test func pubSubEnvelope_decodesGooglesDocumentedShape() throws {
        // The push body from Google's documentation, byte for byte in structure.
        let body = """
            {"message": {"attributes": {"key": "value"}, "data": "SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==",
             "messageId": "2070443601311540", "message_id": "2070443601311540", "publishTime": "2021-02-26T19:13:55.749Z",
             "publish_time": "2021-02-26T19:13:55.749Z"}, "subscription": "projects/myproject/subscriptions/mysubscription"}
            """
        let envelope = try JSONDecoder().decode(PubSubPushEnvelope.self, from: Data(body.utf8))
        #expect(String(decoding: envelope.message.data, as: UTF8.self) == "Hello Cloud Pub/Sub! Here is my message!")
        #expect(envelope.message.attributes == ["key": "value"])
        #expect(envelope.message.publishTime.rfc3339 == "2021-02-26T19:13:55.749000Z")
        #expect(envelope.deliveryAttempt == nil, "deliveryAttempt appears only with a dead-letter policy")
    }
}

@Suite struct FieldValueJSONTests {
    static let samples: [FieldValue] = [
        .null, .bool(true), .bool(false), .integer(0), .integer(Int64.min), .integer(Int64.max), .double(1.5), .double(-0.25),
        .double(.infinity), .double(-.infinity), .timestamp(Timestamp(rfc3339: "2026-01-01T00:00:00Z")!),
        .timestamp(Timestamp(rfc3339: "2026-01-01T10:00:00.123456Z")!), .string(""), .string("plain"),
        .string("quote \" backslash \\ slash / tab \t newline \n control \u{01} é 𝄞"), .bytes(Data([0, 1, 254, 255])), .array([]),
        .array([.integer(1), .string("two"), .map(["three": .integer(3)])]), .map([:]),
        .map(["nested": .map(["deeper": .array([.null, .bool(false)])])]),
    ]

    @Test func fastReader_readsWhatTheCodableFormWrites() throws {
        var fields: [String: FieldValue] = [:]
        for (index, sample) in Self.samples.enumerated() { fields["f\(index) ✓"] = sample }
        let json = String(decoding: try JSONEncoder().encode(fields), as: UTF8.self)
        #expect(FieldValueJSON.parseFields(json) == fields)
        #expect(FieldValueJSON.parseFields(json) == (try JSONDecoder().decode([String: FieldValue].self, from: Data(json.utf8))))
    }

    @Test func plainJSONBytes_equalThePlainJSONRendering() {
        var fields: [String: FieldValue] = [:]
        for (index, sample) in Self.samples.enumerated() { fields["f\(index) \"✓\""] = sample }
        var bytes: [UInt8] = []
        FieldValue.appendPlainJSON(fields, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == FieldValue.map(fields).plainJSON.rendered())
    }

    @Test func fastReader_readsNaN_andRefusesWhatIsNotTheShape() {
        guard case .double(let nan)? = FieldValueJSON.parseFields(#"{"x":{"doubleValue":"NaN"}}"#)?["x"] else {
            Issue.record("NaN")
            return
        }
        #expect(nan.isNaN)
        for bad in [#"{"x":1}"#, #"{"x":{"integerValue":"1.5"}}"#, #"{"x":{"stringValue":"a"}"#, #"{"x":{"mystery":1}}"#, "", "[]"] {
            #expect(FieldValueJSON.parseFields(bad) == nil, "\(bad)")
        }
        #expect(FieldValueJSON.parseFields(#" { "x" : { "integerValue" : "7" } } "#) == ["x": .integer(7)])
    }
}
