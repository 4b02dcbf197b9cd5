import Foundation

/// Plain JSON, for fixtures, expectations and the state dump: numbers keep the
/// difference between integers and doubles, and rendering is deterministic (sorted
/// keys, no insignificant space) so two states can be compared byte for byte.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var integerValue: Int64? {
        switch self {
        case .integer(let i): i
        case .double(let d): Int64(exactly: d)
        default: nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Parses JSON text: one reader for every body, so a repeated key always keeps its
    /// last value (as Stripe's libraries do). - Throws: `INVALID_ARGUMENT` with a reason.
    public static func parse(_ data: Data) throws -> JSONValue {
        // The reader is a tenth of JSONDecoder's time on a Stripe event.
        let fast = data.withUnsafeBytes { raw -> JSONValue? in
            var reader = FieldValueJSON.Reader(bytes: raw.bindMemory(to: UInt8.self))
            guard let value = reader.plain(), reader.atEnd() else { return nil }
            return value
        }
        if let fast { return fast }
        // Not JSON the reader takes: JSONDecoder only words the reason.
        do {
            _ = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw TollgateError(.invalidArgument, "malformed JSON: \(error)")
        }
        throw TollgateError(.invalidArgument, "malformed JSON: nested deeper than 256 levels or a number outside Double's range")
    }

    /// Deterministic JSON text: sorted keys, compact, or indented with `pretty`.
    public func rendered(pretty: Bool = false) -> String {
        var out = ""
        render(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func render(into out: inout String, pretty: Bool, indent: Int) {
        let newline = pretty ? "\n" + String(repeating: "  ", count: indent + 1) : ""
        let close = pretty ? "\n" + String(repeating: "  ", count: indent) : ""
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): Self.quote(s, into: &out)
        case .array(let values):
            if values.isEmpty {
                out += "[]"
                return
            }
            out += "["
            for (index, value) in values.enumerated() {
                out += (index == 0 ? "" : ",") + newline
                value.render(into: &out, pretty: pretty, indent: indent + 1)
            }
            out += close + "]"
        case .object(let fields):
            if fields.isEmpty {
                out += "{}"
                return
            }
            out += "{"
            for (index, key) in fields.keys.sorted().enumerated() {
                out += (index == 0 ? "" : ",") + newline
                Self.quote(key, into: &out)
                out += pretty ? ": " : ":"
                fields[key]!.render(into: &out, pretty: pretty, indent: indent + 1)
            }
            out += close + "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most strings need no escaping: append them whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out += s
            out += "\""
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // RFC 8785 (JCS) writes these two short too; other controls as \u00xx.
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !array.isAtEnd { values.append(try array.decode(JSONValue.self)) }
            self = .array(values)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var fields: [String: JSONValue] = [:]
            for key in object.allKeys { fields[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(fields)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? single.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? single.decode(Double.self) {
            self = .double(d)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .integer(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let values):
            var c = encoder.unkeyedContainer()
            for value in values { try c.encode(value) }
        case .object(let fields):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in fields { try c.encode(value, forKey: AnyKey(key)) }
        }
    }
}

struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension FieldValue {
    /// The plain-JSON view of a value: timestamps as RFC 3339 strings, bytes as base64.
    /// Appends the value as plain JSON (what ``plainJSON`` renders compactly, with sorted
    /// keys), straight to bytes: the export writes millions of these.
    public func appendPlainJSON(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): out.append(contentsOf: String(i).utf8)
        case .double: out.append(contentsOf: plainJSON.rendered().utf8)
        case .timestamp(let t): Self.appendQuoted(t.rfc3339, to: &out)
        case .string(let s): Self.appendQuoted(s, to: &out)
        case .bytes(let d): Self.appendQuoted(d.base64EncodedString(), to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.appendPlainJSON(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .map(let fields): Self.appendPlainJSON(fields, to: &out)
        }
    }

    public static func appendPlainJSON(_ fields: [String: FieldValue], to out: inout [UInt8]) {
        appendObject(fields, to: &out) { value, out in value.appendPlainJSON(to: &out) }
    }

    /// `{"key": …}` with sorted keys, each value written by `appendValue`.
    static func appendObject(
        _ fields: [String: FieldValue], to out: inout [UInt8], _ appendValue: (FieldValue, inout [UInt8]) -> Void
    ) {
        out.append(UInt8(ascii: "{"))
        for (index, field) in fields.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendQuoted(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(field.value, &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Appends the value as Firestore REST `Value` JSON (what its `Codable` form writes,
    /// keys sorted), straight to bytes: the SQLite fake stores every document this way.
    public func appendValueJSON(to out: inout [UInt8]) {
        func kind(_ name: StaticString) {
            out.append(contentsOf: "{\"".utf8)
            out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
        }
        switch self {
        case .null:
            kind("nullValue")
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            kind("booleanValue")
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i):
            kind("integerValue")
            Self.appendQuoted(String(i), to: &out)
        case .double(let d):
            kind("doubleValue")
            if d.isNaN {
                out.append(contentsOf: "\"NaN\"".utf8)
            } else if d.isInfinite {
                out.append(contentsOf: (d > 0 ? "\"Infinity\"" : "\"-Infinity\"").utf8)
            } else {
                out.append(contentsOf: JSONValue.double(d).rendered().utf8)
            }
        case .timestamp(let t):
            kind("timestampValue")
            Self.appendQuoted(t.rfc3339, to: &out)
        case .string(let s):
            kind("stringValue")
            Self.appendQuoted(s, to: &out)
        case .bytes(let d):
            kind("bytesValue")
            Self.appendQuoted(d.base64EncodedString(), to: &out)
        case .array(let values):
            kind("arrayValue")
            out.append(contentsOf: "{\"values\":[".utf8)
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.appendValueJSON(to: &out)
            }
            out.append(contentsOf: "]}".utf8)
        case .map(let fields):
            kind("mapValue")
            out.append(contentsOf: "{\"fields\":".utf8)
            Self.appendValueJSON(fields, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A document's fields as `{"name": Value, …}`, keys sorted.
    public static func appendValueJSON(_ fields: [String: FieldValue], to out: inout [UInt8]) {
        appendObject(fields, to: &out) { value, out in value.appendValueJSON(to: &out) }
    }

    static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: text.utf8)
            out.append(UInt8(ascii: "\""))
        } else {
            out.append(contentsOf: JSONValue.string(text).rendered().utf8)
        }
    }

    public var plainJSON: JSONValue {
        switch self {
        case .null: .null
        case .bool(let b): .bool(b)
        case .integer(let i): .integer(i)
        case .double(let d): .double(d)
        case .timestamp(let t): .string(t.rfc3339)
        case .string(let s): .string(s)
        case .bytes(let d): .string(d.base64EncodedString())
        case .array(let values): .array(values.map(\.plainJSON))
        case .map(let fields): .object(fields.mapValues(\.plainJSON))
        }
    }
}
