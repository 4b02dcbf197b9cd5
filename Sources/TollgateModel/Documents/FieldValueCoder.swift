import Foundation

/// Encodes an `Encodable` value as document fields, the way Firestore's SDKs map types:
/// integers as `integer`, floating point as `double`, `Date` and ``Timestamp`` as
/// `timestamp`, `Data` as `bytes`, optionals that are nil are left out.
public struct FieldValueEncoder: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> [String: FieldValue] {
        guard case .map(let fields) = try encodeValue(value) else {
            throw TollgateError(.invalidArgument, "\(T.self) does not encode as a map of fields")
        }
        return fields
    }

    public func encodeValue<T: Encodable>(_ value: T) throws -> FieldValue {
        if let special = Self.special(value) { return special }
        let box = EncodingBox()
        try value.encode(to: FieldEncoder(box: box, codingPath: []))
        return box.resolve()
    }

    static func special(_ value: Any) -> FieldValue? {
        switch value {
        case let v as FieldValue: v
        case let v as Timestamp: .timestamp(v)
        case let v as Date: .timestamp(Timestamp(v))
        case let v as Data: .bytes(v)
        default: nil
        }
    }
}

/// Decodes document fields into a `Decodable` type; the inverse of ``FieldValueEncoder``.
public struct FieldValueDecoder: Sendable {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from fields: [String: FieldValue]) throws -> T {
        try decode(type, fromValue: .map(fields))
    }

    public func decode<T: Decodable>(_ type: T.Type, fromValue value: FieldValue) throws -> T {
        try FieldDecoder(value: value, codingPath: []).decodeSpecial(type)
    }
}

// MARK: - Encoding

private final class EncodingBox {
    var value: FieldValue?
    var fields: [String: EncodingBox] = [:]
    var elements: [EncodingBox] = []
    var kind: Kind = .single
    enum Kind { case single, keyed, unkeyed }

    func resolve() -> FieldValue {
        switch kind {
        case .single: value ?? .null
        case .keyed: .map(fields.mapValues { $0.resolve() })
        case .unkeyed: .array(elements.map { $0.resolve() })
        }
    }
}

private struct FieldEncoder: Encoder {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        box.kind = .keyed
        return KeyedEncodingContainer(KeyedFieldEncoder<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        box.kind = .unkeyed
        return UnkeyedFieldEncoder(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleFieldEncoder(box: box, codingPath: codingPath)
    }
}

extension EncodingBox {
    /// Finishes a nested encoding so a parent can read `value`.
    func settle() -> EncodingBox {
        if kind != .single { value = resolve() }
        return self
    }
}

private func encodeAny<T: Encodable>(_ value: T, into box: EncodingBox, codingPath: [any CodingKey]) throws {
    if let special = FieldValueEncoder.special(value) {
        box.value = special
        return
    }
    try value.encode(to: FieldEncoder(box: box, codingPath: codingPath))
}

private func integer<T: BinaryInteger>(_ value: T, _ codingPath: [any CodingKey]) throws -> FieldValue {
    guard let v = Int64(exactly: value) else {
        throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "does not fit in 64 bits"))
    }
    return .integer(v)
}

private struct KeyedFieldEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: EncodingBox
    let codingPath: [any CodingKey]

    private func child(_ key: Key) -> EncodingBox {
        let child = EncodingBox()
        box.fields[key.stringValue] = child
        return child
    }

    mutating func encodeNil(forKey key: Key) throws { child(key).value = .null }
    mutating func encode(_ value: Bool, forKey key: Key) throws { child(key).value = .bool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { child(key).value = .string(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { child(key).value = .double(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { child(key).value = .double(Double(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { child(key).value = try integer(value, codingPath) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { child(key).value = .integer(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { child(key).value = .integer(Int64(value)) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { child(key).value = try integer(value, codingPath) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encodeAny(value, into: child(key), codingPath: codingPath + [key])
    }
    // Firestore SDKs leave nil optionals out of the document.
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        FieldEncoder(box: child(key), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        FieldEncoder(box: child(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { FieldEncoder(box: box, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { FieldEncoder(box: child(key), codingPath: codingPath + [key]) }
}

private struct IndexKey: CodingKey {
    let intValue: Int?
    let stringValue: String
    init(_ index: Int) {
        intValue = index
        stringValue = "\(index)"
    }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.init(intValue) }
}

private struct UnkeyedFieldEncoder: UnkeyedEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]
    var count: Int { box.elements.count }

    private func next() -> EncodingBox {
        let child = EncodingBox()
        box.elements.append(child)
        return child
    }

    mutating func encodeNil() throws { next().value = .null }
    mutating func encode(_ value: Bool) throws { next().value = .bool(value) }
    mutating func encode(_ value: String) throws { next().value = .string(value) }
    mutating func encode(_ value: Double) throws { next().value = .double(value) }
    mutating func encode(_ value: Int) throws { next().value = try integer(value, codingPath) }
    mutating func encode(_ value: Int64) throws { next().value = .integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try encodeAny(value, into: next(), codingPath: codingPath + [IndexKey(count)])
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        FieldEncoder(box: next(), codingPath: codingPath).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        FieldEncoder(box: next(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { FieldEncoder(box: next(), codingPath: codingPath) }
}

private struct SingleFieldEncoder: SingleValueEncodingContainer {
    let box: EncodingBox
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { box.value = .null }
    mutating func encode(_ value: Bool) throws { box.value = .bool(value) }
    mutating func encode(_ value: String) throws { box.value = .string(value) }
    mutating func encode(_ value: Double) throws { box.value = .double(value) }
    mutating func encode(_ value: Float) throws { box.value = .double(Double(value)) }
    mutating func encode(_ value: Int) throws { box.value = try integer(value, codingPath) }
    mutating func encode(_ value: Int64) throws { box.value = .integer(value) }
    mutating func encode(_ value: Int32) throws { box.value = .integer(Int64(value)) }
    mutating func encode(_ value: UInt64) throws { box.value = try integer(value, codingPath) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try encodeAny(value, into: box, codingPath: codingPath)
        box.value = box.settle().value
        box.kind = .single
    }
}

// MARK: - Decoding

private struct FieldDecoder: Decoder {
    let value: FieldValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func decodeSpecial<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is FieldValue.Type: return value as! T
        case is Timestamp.Type, is Date.Type:
            guard case .timestamp(let ts) = value else { throw mismatch(type) }
            return (type == Date.self ? ts.date as Any : ts as Any) as! T
        case is Data.Type:
            guard case .bytes(let data) = value else { throw mismatch(type) }
            return data as! T
        default:
            return try T(from: self)
        }
    }

    func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "found \(value)"))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let fields) = value else { throw mismatch([String: FieldValue].self) }
        return KeyedDecodingContainer(KeyedFieldDecoder<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let values) = value else { throw mismatch([FieldValue].self) }
        return UnkeyedFieldDecoder(values: values, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleFieldDecoder(decoder: self) }
}

private func decodeScalar<T>(_ type: T.Type, from value: FieldValue, _ codingPath: [any CodingKey]) throws -> T {
    let result: Any? =
        switch (value, type) {
        case (.bool(let b), is Bool.Type): b
        case (.string(let s), is String.Type): s
        case (.integer(let i), is Int64.Type): i
        case (.integer(let i), is Int.Type): Int(exactly: i)
        case (.integer(let i), is Int32.Type): Int32(exactly: i)
        case (.integer(let i), is UInt64.Type): UInt64(exactly: i)
        case (.integer(let i), is Double.Type): Double(i)
        case (.double(let d), is Double.Type): d
        case (.double(let d), is Float.Type): Float(d)
        case (.integer(let i), is Float.Type): Float(i)
        default: nil
        }
    guard let typed = result as? T else {
        throw DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: "found \(value)"))
    }
    return typed
}

private struct KeyedFieldDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: FieldValue]
    let codingPath: [any CodingKey]
    var allKeys: [Key] { fields.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    private func value(_ key: Key) throws -> FieldValue {
        guard let value = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing field"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { (fields[key.stringValue] ?? .null) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decodeScalar(type, from: value(key), codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decodeScalar(type, from: value(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decodeScalar(type, from: value(key), codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decodeScalar(type, from: value(key), codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decodeScalar(type, from: value(key), codingPath + [key]) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try FieldDecoder(value: value(key), codingPath: codingPath + [key]).decodeSpecial(type)
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try FieldDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try FieldDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder { FieldDecoder(value: .map(fields), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { FieldDecoder(value: try value(key), codingPath: codingPath + [key]) }
}

private struct UnkeyedFieldDecoder: UnkeyedDecodingContainer {
    let values: [FieldValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { values.count }
    var isAtEnd: Bool { currentIndex >= values.count }

    private mutating func next() throws -> FieldValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(FieldValue.self, .init(codingPath: codingPath, debugDescription: "end of array"))
        }
        defer { currentIndex += 1 }
        return values[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, values[currentIndex] == .null {
            currentIndex += 1
            return true
        }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let path = codingPath + [IndexKey(currentIndex)]
        return try FieldDecoder(value: next(), codingPath: path).decodeSpecial(type)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try FieldDecoder(value: next(), codingPath: codingPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try FieldDecoder(value: next(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder { FieldDecoder(value: try next(), codingPath: codingPath) }
}

private struct SingleFieldDecoder: SingleValueDecodingContainer {
    let decoder: FieldDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try decodeScalar(type, from: decoder.value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try decodeScalar(type, from: decoder.value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try decodeScalar(type, from: decoder.value, codingPath) }
    func decode(_ type: Int.Type) throws -> Int { try decodeScalar(type, from: decoder.value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeScalar(type, from: decoder.value, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeSpecial(type) }
}
