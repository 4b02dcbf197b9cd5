import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@Suite struct FieldValueJSONTests {
    static let samples: [FieldValue] = [
        .null, .bool(true), .bool(false), .integer(0), .integer(Int64.min), .integer(Int64.max), .double(1.5), .double(-0.25),
        .double(.infinity), .double(-.infinity), .timestamp(Timestamp(rfc3339: "2026-01-01T00:00:00Z")!),
        .timestamp(Timestamp(rfc3339: "2026-01-01T10:00:00.123456Z")!), .string(""), .string("plain"),
        .string("quote \" backslash \\ slash / tab \t newline \n control \u{01} é 𝄞"), .bytes(Data([0, 1, 254, 255])), .array([]),
        .array([.integer(1), .string("two"), .map(["three": .integer(3)])]), .map([:]),
        .map(["nested": .map(["deeper": .array([.null, .bool(false)])])]),
    ]

    /// What docs/formats.md calls canonical: RFC 8785's serialization of strings (the six
    /// short escapes, other controls as lower-case `\u00xx`, everything else as UTF-8,
    /// `/` and U+007F unescaped), integers in decimal, keys sorted, no spaces.
    @Test func rendering_isRFC8785sCanonicalForm_ofStringsIntegersAndKeys() {
        let text = "q\"b\\s/\u{08}\u{0C}\n\r\t\u{01}\u{1F}\u{7F}é€𝄞"
        let value: JSONValue = .object(["b": .integer(-12), "a": .array([.string(text), .integer(0)]), "A": .object([:])])
        #expect(value.rendered() == #"{"A":{},"a":["q\"b\\s/\b\f\n\r\t\u0001\u001f\#u{7F}é€𝄞",0],"b":-12}"#)
        var bytes: [UInt8] = []
        FieldValue.appendPlainJSON(["k": .string(text)], to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"k":"q\"b\\s/\b\f\n\r\t\u0001\u001f\#u{7F}é€𝄞"}"#)
    }

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
