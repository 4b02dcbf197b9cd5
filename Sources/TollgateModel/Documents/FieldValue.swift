import Foundation

/// A value in a document, with exactly the types Firestore stores.
///
/// Its `Codable` form is Firestore's REST `Value` JSON (`{"integerValue": "5"}`,
/// `{"mapValue": {"fields": …}}`), so the SQLite fake and the Firestore driver share it.
/// <https://firebase.google.com/docs/firestore/reference/rest/v1/Value>
public enum FieldValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case timestamp(Timestamp)
    case string(String)
    case bytes(Data)
    case array([FieldValue])
    case map([String: FieldValue])
}

extension FieldValue {
    /// Firestore's type order for values of different types (numbers share one rank).
    var typeRank: Int {
        switch self {
        case .null: 0
        case .bool: 1
        case .integer, .double: 2
        case .timestamp: 3
        case .string: 4
        case .bytes: 5
        case .array: 8
        case .map: 9
        }
    }

    public var isNumber: Bool { typeRank == 2 }

    /// Firestore's total order of values: by type rank, then within the type.
    /// NaN sorts before every other number, as in Firestore.
    public static func compare(_ a: FieldValue, _ b: FieldValue) -> Int {
        if a.typeRank != b.typeRank { return a.typeRank < b.typeRank ? -1 : 1 }
        switch (a, b) {
        case (.null, .null): return 0
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (!x ? -1 : 1)
        case (.integer(let x), .integer(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.timestamp(let x), .timestamp(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.string(let x), .string(let y)):
            // Firestore orders strings by their UTF-8 bytes.
            return Self.compareBytes(Array(x.utf8), Array(y.utf8))
        case (.bytes(let x), .bytes(let y)): return Self.compareBytes(Array(x), Array(y))
        case (.array(let x), .array(let y)):
            for (l, r) in zip(x, y) {
                let c = compare(l, r)
                if c != 0 { return c }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        case (.map(let x), .map(let y)):
            let xs = x.keys.sorted()
            let ys = y.keys.sorted()
            for (lk, rk) in zip(xs, ys) {
                if lk != rk { return lk < rk ? -1 : 1 }
                let c = compare(x[lk]!, y[rk]!)
                if c != 0 { return c }
            }
            return xs.count == ys.count ? 0 : (xs.count < ys.count ? -1 : 1)
        default:
            let x = a.numericValue
            let y = b.numericValue
            if x.isNaN { return y.isNaN ? 0 : -1 }
            if y.isNaN { return 1 }
            if case .integer(let i) = a, case .double = b, Double(i) == y { return 0 }
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }

    public var numericValue: Double {
        switch self {
        case .integer(let i): Double(i)
        case .double(let d): d
        default: .nan
        }
    }

    private static func compareBytes(_ x: [UInt8], _ y: [UInt8]) -> Int {
        for (l, r) in zip(x, y) where l != r { return l < r ? -1 : 1 }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    }

    /// The storage size Firestore counts against its 1 MiB document limit.
    /// <https://firebase.google.com/docs/firestore/storage-size>
    public var storageSize: Int {
        switch self {
        case .null, .bool: 1
        case .integer, .double, .timestamp: 8
        case .string(let s): s.utf8.count + 1
        case .bytes(let d): d.count
        case .array(let values): values.reduce(0) { $0 + $1.storageSize }
        case .map(let fields): Self.storageSize(of: fields)
        }
    }

    static func storageSize(of fields: [String: FieldValue]) -> Int {
        fields.reduce(0) { $0 + $1.key.utf8.count + 1 + $1.value.storageSize }
    }

    /// The value at a dotted field path (`quota.used`), if every step is a map.
    public func value(at path: FieldPath) -> FieldValue? {
        var current = self
        for segment in path.segments {
            guard case .map(let fields) = current, let next = fields[segment] else { return nil }
            current = next
        }
        return current
    }
}

/// A dotted path to a field inside a document, such as `entitlements.monthlyQuotaUnits`.
public struct FieldPath: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let segments: [String]
    public init(_ dotted: String) { segments = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
    public init(stringLiteral value: String) { self.init(value) }
    /// A path from its segments, which may hold dots (a map key such as an instance name).
    public init(segments: [String]) { self.segments = segments }
    public var description: String { segments.joined(separator: ".") }
}

extension Dictionary where Key == String, Value == FieldValue {
    /// The value at a dotted field path.
    public func value(at path: FieldPath) -> FieldValue? { FieldValue.map(self).value(at: path) }

    /// Sets (or with nil removes) the value at a dotted field path, creating maps on the way.
    public mutating func setValue(_ value: FieldValue?, at path: FieldPath) {
        let segments = path.segments
        guard let head = segments.first else { return }
        if segments.count == 1 {
            self[head] = value
            return
        }
        var child: [String: FieldValue] = [:]
        if case .map(let existing) = self[head] { child = existing }
        child.setValue(value, at: FieldPath(segments.dropFirst().joined(separator: ".")))
        self[head] = .map(child)
    }
}

// MARK: - Firestore REST `Value` JSON

extension FieldValue: Codable {
    private enum Key: String, CodingKey {
        case nullValue, booleanValue, integerValue, doubleValue, timestampValue, stringValue
        case bytesValue, arrayValue, mapValue, values, fields
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a Value has exactly one field"))
        }
        switch key {
        case .nullValue: self = .null
        case .booleanValue: self = .bool(try c.decode(Bool.self, forKey: key))
        case .integerValue:
            // REST sends 64-bit integers as strings; accept a JSON number too.
            if let text = try? c.decode(String.self, forKey: key), let value = Int64(text) {
                self = .integer(value)
            } else {
                self = .integer(try c.decode(Int64.self, forKey: key))
            }
        case .doubleValue:
            if let text = try? c.decode(String.self, forKey: key) {
                switch text {
                case "NaN": self = .double(.nan)
                case "Infinity": self = .double(.infinity)
                case "-Infinity": self = .double(-.infinity)
                default: throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "bad double")
                }
            } else {
                self = .double(try c.decode(Double.self, forKey: key))
            }
        case .timestampValue:
            let text = try c.decode(String.self, forKey: key)
            guard let ts = Timestamp(rfc3339: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "bad timestamp \(text)")
            }
            self = .timestamp(ts)
        case .stringValue: self = .string(try c.decode(String.self, forKey: key))
        case .bytesValue:
            guard let data = Data(base64Encoded: try c.decode(String.self, forKey: key)) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "bad base64")
            }
            self = .bytes(data)
        case .arrayValue:
            let inner = try c.nestedContainer(keyedBy: Key.self, forKey: key)
            self = .array(try inner.decodeIfPresent([FieldValue].self, forKey: .values) ?? [])
        case .mapValue:
            let inner = try c.nestedContainer(keyedBy: Key.self, forKey: key)
            self = .map(try inner.decodeIfPresent([String: FieldValue].self, forKey: .fields) ?? [:])
        case .values, .fields:
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not a Value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case .null: try c.encodeNil(forKey: .nullValue)
        case .bool(let b): try c.encode(b, forKey: .booleanValue)
        case .integer(let i): try c.encode(String(i), forKey: .integerValue)
        case .double(let d):
            if d.isNaN {
                try c.encode("NaN", forKey: .doubleValue)
            } else if d.isInfinite {
                try c.encode(d > 0 ? "Infinity" : "-Infinity", forKey: .doubleValue)
            } else {
                try c.encode(d, forKey: .doubleValue)
            }
        case .timestamp(let t): try c.encode(t.rfc3339, forKey: .timestampValue)
        case .string(let s): try c.encode(s, forKey: .stringValue)
        case .bytes(let d): try c.encode(d.base64EncodedString(), forKey: .bytesValue)
        case .array(let values):
            var inner = c.nestedContainer(keyedBy: Key.self, forKey: .arrayValue)
            try inner.encode(values, forKey: .values)
        case .map(let fields):
            var inner = c.nestedContainer(keyedBy: Key.self, forKey: .mapValue)
            try inner.encode(fields, forKey: .fields)
        }
    }
}
