import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// `JSONValue.parse` gives what `JSONDecoder` gives for RFC 8259 JSON, and refuses what
/// it refuses — and also what Foundation's decoder is lenient about (trailing commas) and
/// nesting past 256 levels, which no sender Tollgate serves produces.
@Suite struct JSONValueParsingTests {
    /// The reference: Foundation's decoder alone (which, for one, accepts a trailing comma).
    static func reference(_ data: Data) -> JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: data) }

    @Test func everyFixtureAndPayload_parsesAsJSONDecoderParsesIt() throws {
        let events = packageRoot.appendingPathComponent("events")
        let files = FileManager.default.enumerator(atPath: events.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") } ?? []
        #expect(files.count > 50)
        for file in files {
            let data = try Data(contentsOf: events.appendingPathComponent(file))
            #expect(try JSONValue.parse(data) == Self.reference(data), "\(file)")
        }
    }

    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e\n\u00e9\ud83d\ude00"},"f":-9223372036854775808}"#, "  [ ]  ", "{}", #""just a string""#,
        "42", "-0", "1.5", "1e3", "-2.5E-3", "9223372036854775808", #"{"n":0.1}"#, #"["\/\\\"\b\f\r\t"]"#,
    ])
    func wellFormed_parsesAsJSONDecoder(_ text: String) throws {
        #expect(try JSONValue.parse(Data(text.utf8)) == Self.reference(Data(text.utf8)))
    }

    @Test(arguments: [
        "", "{", #"{"a":}"#, "01", "-", "+1", "tru", "nul", #"{"a" 1}"#, #"["\x"]"#, #""\ud800""#, "[1] x",
        "\u{0}", "\"tab\tin string\"",
    ])
    func malformed_isRefused_asJSONDecoderRefusesIt(_ text: String) {
        #expect(throws: TollgateError.self) { try JSONValue.parse(Data(text.utf8)) }
        #expect(Self.reference(Data(text.utf8)) == nil)
    }

    @Test func invalidUTF8_isRefused() {
        let data = Data([0x22, 0xFF, 0xFE, 0x22])
        #expect(throws: TollgateError.self) { try JSONValue.parse(data) }
    }

    @Test func trailingCommas_areRefused_thoughJSONDecoderTakesThem() async {
        for text in ["[1,]", #"{"a":1,}"#] {
            #expect(Self.reference(Data(text.utf8)) != nil)
            await expectCode(.invalidArgument) { try JSONValue.parse(Data(text.utf8)) }
        }
    }

    @Test func nestingPast256Levels_isRefused_withAReason() async {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let error = await expectCode(.invalidArgument) { try JSONValue.parse(Data(deep.utf8)) }
        #expect(error?.message.contains("256") == true)
        let fine = String(repeating: "[", count: 255) + String(repeating: "]", count: 255)
        #expect(throws: Never.self) { try JSONValue.parse(Data(fine.utf8)) }
    }

    @Test func valueJSONWriter_roundTripsEveryType_throughBothReaders() throws {
        let fields: [String: FieldValue] = [
            "null": .null, "flag": .bool(false), "count": .integer(Int64.min), "ratio": .double(-0.125), "whole": .double(2),
            "inf": .double(.infinity), "at": .timestamp(Timestamp(microsecondsSinceEpoch: 1_767_225_600_000_001)),
            "text": .string("quote \" slash \\ tab \t é 😀"), "raw": .bytes(Data([0, 1, 254, 255])),
            "list": .array([.integer(1), .array([]), .map([:])]), "nested": .map(["a b": .map(["c": .string("d")])]),
        ]
        var bytes: [UInt8] = []
        FieldValue.appendValueJSON(fields, to: &bytes)
        #expect(FieldValueJSON.parseFields(String(decoding: bytes, as: UTF8.self)) == fields)
        #expect(try JSONDecoder().decode([String: FieldValue].self, from: Data(bytes)) == fields)
        var nan: [UInt8] = []
        FieldValue.appendValueJSON(["x": .double(.nan)], to: &nan)
        #expect(String(decoding: nan, as: UTF8.self) == #"{"x":{"doubleValue":"NaN"}}"#)
    }
}
