import Foundation
import TollgateModel

/// Firestore's REST `Value` JSON, both ways, as ``JSONValue`` trees so a request body is
/// rendered once. Integers travel as strings (int64 in JSON), doubles as numbers or the
/// strings `NaN`, `Infinity`, `-Infinity`, bytes as base64.
enum FirestoreValue {
    static func encode(_ value: FieldValue) -> JSONValue {
        switch value {
        case .null: .object(["nullValue": .null])
        case .bool(let b): .object(["booleanValue": .bool(b)])
        case .integer(let i): .object(["integerValue": .string(String(i))])
        case .double(let d):
            .object([
                "doubleValue": d.isNaN ? .string("NaN") : d.isInfinite ? .string(d > 0 ? "Infinity" : "-Infinity") : .double(d)
            ])
        case .timestamp(let t): .object(["timestampValue": .string(t.rfc3339)])
        case .string(let s): .object(["stringValue": .string(s)])
        case .bytes(let data): .object(["bytesValue": .string(data.base64EncodedString())])
        case .array(let values): .object(["arrayValue": .object(["values": .array(values.map(encode))])])
        case .map(let fields): .object(["mapValue": .object(["fields": encode(fields)])])
        }
    }

    static func encode(_ fields: [String: FieldValue]) -> JSONValue {
        .object(fields.mapValues(encode))
    }

    /// - Throws: `UNAVAILABLE` for a value Firestore would not send (the answer is broken,
    ///   not the caller's input). References decode to their path string, geo points to a
    ///   `{latitude, longitude}` map: Tollgate writes neither.
    static func decode(_ json: JSONValue) throws -> FieldValue {
        guard let object = json.objectValue, object.count == 1, let (kind, payload) = object.first else {
            throw malformed("a Value has exactly one field")
        }
        switch kind {
        case "nullValue": return .null
        case "booleanValue":
            guard let b = payload.boolValue else { throw malformed("booleanValue") }
            return .bool(b)
        case "integerValue":
            guard let i = payload.stringValue.flatMap({ Int64($0) }) ?? payload.integerValue else { throw malformed("integerValue") }
            return .integer(i)
        case "doubleValue":
            switch payload {
            case .double(let d): return .double(d)
            case .integer(let i): return .double(Double(i))
            case .string("NaN"): return .double(.nan)
            case .string("Infinity"): return .double(.infinity)
            case .string("-Infinity"): return .double(-.infinity)
            default: throw malformed("doubleValue")
            }
        case "timestampValue":
            guard let t = payload.stringValue.flatMap({ Timestamp(rfc3339: $0) }) else { throw malformed("timestampValue") }
            return .timestamp(t)
        case "stringValue":
            guard let s = payload.stringValue else { throw malformed("stringValue") }
            return .string(s)
        case "bytesValue":
            guard let data = payload.stringValue.flatMap({ Data(base64Encoded: $0) }) else { throw malformed("bytesValue") }
            return .bytes(data)
        case "referenceValue":
            guard let name = payload.stringValue, let range = name.range(of: "/documents/") else { throw malformed("referenceValue") }
            return .string(String(name[range.upperBound...]))
        case "geoPointValue":
            return .map([
                "latitude": .double(payload["latitude"]?.doubleValue ?? 0), "longitude": .double(payload["longitude"]?.doubleValue ?? 0),
            ])
        case "arrayValue":
            return .array(try (payload["values"]?.arrayValue ?? []).map(decode))
        case "mapValue":
            return .map(try decodeFields(payload["fields"]))
        default:
            throw malformed("unknown Value kind \(kind)")
        }
    }

    static func decodeFields(_ json: JSONValue?) throws -> [String: FieldValue] {
        guard let json else { return [:] }
        guard let object = json.objectValue else { throw malformed("fields is not an object") }
        return try object.mapValues(decode)
    }

    private static func malformed(_ what: String) -> TollgateError {
        TollgateError(.unavailable, "firestore sent a malformed Value: \(what)")
    }
}

extension JSONValue {
    fileprivate var doubleValue: Double? {
        switch self {
        case .double(let d): d
        case .integer(let i): Double(i)
        default: nil
        }
    }
}

extension FieldPath {
    /// The path as Firestore's field-path grammar wants it: a segment that is not a simple
    /// identifier (`[A-Za-z_][A-Za-z_0-9]*`) is back-quoted, with `` ` `` and `\` escaped.
    var firestoreEscaped: String {
        segments.map { segment in
            let simple =
                !segment.isEmpty && segment.utf8.first.map({ !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) == true
                && segment.utf8.allSatisfy {
                    $0 == UInt8(ascii: "_") || ($0 < 0x80 && Character(Unicode.Scalar($0)).isLetter)
                        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                }
            if simple { return segment }
            return "`" + segment.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "`", with: "\\`") + "`"
        }.joined(separator: ".")
    }
}
