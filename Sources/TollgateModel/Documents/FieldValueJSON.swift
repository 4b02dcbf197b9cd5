import Foundation

/// A direct reader of Firestore REST `Value` JSON (a document's `fields`), about ten
/// times faster than `JSONDecoder` with `FieldValue`'s `Codable` form, which decides how
/// fast the SQLite fake can read. It accepts exactly what that form writes and what the
/// REST API sends; on anything else it returns nil and callers fall back to `JSONDecoder`.
public enum FieldValueJSON {
    /// Parses `{"name": Value, …}`. - Returns: nil when the text is not that shape.
    public static func parseFields(_ bytes: UnsafeBufferPointer<UInt8>) -> [String: FieldValue]? {
        var reader = Reader(bytes: bytes)
        guard let fields = reader.fields(), reader.atEnd() else { return nil }
        return fields
    }

    public static func parseFields(_ text: String) -> [String: FieldValue]? {
        var text = text
        return text.withUTF8 { parseFields($0) }
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func atEnd() -> Bool {
            skipSpace()
            return index == bytes.count
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// `{"name": Value, …}` (a `fields` object).
        mutating func fields() -> [String: FieldValue]? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var fields: [String: FieldValue] = [:]
            if take(UInt8(ascii: "}")) { return fields }
            // Documents have a handful of fields: skip the dictionary's first regrowths.
            fields.reserveCapacity(12)
            repeat {
                guard let name = string(), take(UInt8(ascii: ":")), let value = value() else { return nil }
                fields[name] = value
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}")) ? fields : nil
        }

        /// `{"<kind>Value": …}`.
        mutating func value() -> FieldValue? {
            guard take(UInt8(ascii: "{")), let kind = string(), take(UInt8(ascii: ":")) else { return nil }
            let result: FieldValue?
            switch kind {
            case "stringValue": result = string().map(FieldValue.string)
            case "integerValue":
                if let text = string() {
                    result = Int64(text).map(FieldValue.integer)
                } else {
                    result = number().flatMap { Int64($0) }.map(FieldValue.integer)
                }
            case "timestampValue": result = string().flatMap { Timestamp(rfc3339: $0) }.map(FieldValue.timestamp)
            case "booleanValue":
                if literal("true") { result = .bool(true) } else if literal("false") { result = .bool(false) } else { result = nil }
            case "nullValue": result = literal("null") ? .null : nil
            case "doubleValue":
                if let text = string() {
                    switch text {
                    case "NaN": result = .double(.nan)
                    case "Infinity": result = .double(.infinity)
                    case "-Infinity": result = .double(-.infinity)
                    default: result = nil
                    }
                } else {
                    result = number().flatMap { Double($0) }.map(FieldValue.double)
                }
            case "bytesValue": result = string().flatMap { Data(base64Encoded: $0) }.map(FieldValue.bytes)
            case "mapValue": result = wrapped("fields", empty: .map([:])) { $0.fields().map(FieldValue.map) }
            case "arrayValue": result = wrapped("values", empty: .array([])) { $0.array() }
            default: result = nil
            }
            guard let result, take(UInt8(ascii: "}")) else { return nil }
            return result
        }

        /// `{"<key>": …}` or `{}` (an empty map or array omits its key).
        mutating func wrapped(_ key: String, empty: FieldValue, _ body: (inout Reader) -> FieldValue?) -> FieldValue? {
            guard take(UInt8(ascii: "{")) else { return nil }
            if take(UInt8(ascii: "}")) { return empty }
            guard string() == key, take(UInt8(ascii: ":")), let value = body(&self), take(UInt8(ascii: "}")) else { return nil }
            return value
        }

        mutating func array() -> FieldValue? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var values: [FieldValue] = []
            if take(UInt8(ascii: "]")) { return .array(values) }
            repeat {
                guard let value = value() else { return nil }
                values.append(value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? .array(values) : nil
        }

        mutating func literal(_ word: StaticString) -> Bool {
            skipSpace()
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
            index += count
            return true
        }

        /// A JSON number's text.
        mutating func number() -> String? {
            skipSpace()
            let start = index
            while index < bytes.count, let byte = Optional(bytes[index]),
                (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2B || byte == 0x2E || byte == 0x65 || byte == 0x45
            {
                index += 1
            }
            guard index > start else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }

        /// A JSON string, with its escapes.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // The common case: no escapes, decoded in one go.
            while index < bytes.count, bytes[index] != 0x22, bytes[index] != 0x5C {
                guard bytes[index] >= 0x20 else { return nil }
                index += 1
            }
            guard index < bytes.count else { return nil }
            if bytes[index] == 0x22 {
                defer { index += 1 }
                // Invalid UTF-8 is refused here (the caller falls back to JSONDecoder, which refuses it too).
                return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            }
            var scalars = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x22: return String(validating: scalars, as: UTF8.self)
                case 0x5C:
                    guard index < bytes.count else { return nil }
                    let escaped = bytes[index]
                    index += 1
                    switch escaped {
                    case 0x22, 0x5C, 0x2F: scalars.append(escaped)
                    case UInt8(ascii: "b"): scalars.append(0x08)
                    case UInt8(ascii: "f"): scalars.append(0x0C)
                    case UInt8(ascii: "n"): scalars.append(0x0A)
                    case UInt8(ascii: "r"): scalars.append(0x0D)
                    case UInt8(ascii: "t"): scalars.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var code = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(code) {
                            guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == UInt8(ascii: "u") else { return nil }
                            index += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { return nil }
                        scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: return nil
                    }
                default:
                    guard byte >= 0x20 else { return nil }
                    scalars.append(byte)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt8
                switch byte {
                case 0x30...0x39: digit = byte - 0x30
                case 0x41...0x46: digit = byte - 0x41 + 10
                case 0x61...0x66: digit = byte - 0x61 + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
    }
}

extension FieldValueJSON.Reader {
    /// Any JSON value as ``JSONValue``, or nil for what is not JSON (leading zeros, a
    /// number outside Double's range, …) or nests deeper than 256. Objects with a
    /// repeated key keep the last value, as Stripe's libraries and JavaScript read them,
    /// whatever else the body holds. Numbers with a fraction or exponent that are whole
    /// and fit Int64 read as integers (`1.0`, `1e2`), as JSONDecoder read them.
    mutating func plain(depth: Int = 0) -> JSONValue? {
        guard depth < 256 else { return nil }
        skipSpace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var object: [String: JSONValue] = [:]
            if take(UInt8(ascii: "}")) { return .object(object) }
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")), let value = plain(depth: depth + 1) else { return nil }
                object[key] = value
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}")) ? .object(object) : nil
        case UInt8(ascii: "["):
            index += 1
            var array: [JSONValue] = []
            if take(UInt8(ascii: "]")) { return .array(array) }
            repeat {
                guard let value = plain(depth: depth + 1) else { return nil }
                array.append(value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? .array(array) : nil
        case UInt8(ascii: "\""): return string().map(JSONValue.string)
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default:
            guard let text = number(), Self.isJSONNumber(text.utf8) else { return nil }
            let whole = !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
            if whole, let value = Int64(text) { return .integer(value) }
            guard let double = Double(text), double.isFinite else { return nil }
            if let value = Int64(exactly: double) { return .integer(value) }
            return .double(double)
        }
    }

    /// RFC 8259's number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    static func isJSONNumber(_ text: String.UTF8View) -> Bool {
        var bytes = text.makeIterator()
        var byte = bytes.next()
        func isDigit(_ b: UInt8?) -> Bool { b.map { (0x30...0x39).contains($0) } ?? false }
        if byte == 0x2D { byte = bytes.next() }
        guard isDigit(byte) else { return false }
        if byte == 0x30 {
            byte = bytes.next()
        } else {
            while isDigit(byte) { byte = bytes.next() }
        }
        if byte == 0x2E {
            byte = bytes.next()
            guard isDigit(byte) else { return false }
            while isDigit(byte) { byte = bytes.next() }
        }
        if byte == 0x65 || byte == 0x45 {
            byte = bytes.next()
            if byte == 0x2B || byte == 0x2D { byte = bytes.next() }
            guard isDigit(byte) else { return false }
            while isDigit(byte) { byte = bytes.next() }
        }
        return byte == nil
    }
}
