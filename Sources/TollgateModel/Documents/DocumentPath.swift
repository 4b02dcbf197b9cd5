/// The path of a document: `collection/id`, or deeper for subcollections
/// (`accounts/a1/keys/k1`). Validated with Firestore's rules for names.
/// <https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields>
public struct DocumentPath: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let segments: [String]

    /// - Throws: `INVALID_ARGUMENT` unless the path has an even number of valid segments.
    public init(_ path: String) throws {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        try self.init(segments: segments)
    }

    public init(collection: String, id: String) throws {
        try self.init(segments: collection.split(separator: "/", omittingEmptySubsequences: false).map(String.init) + [id])
    }

    /// Documents of one collection, for readers that make many paths in it: the
    /// collection is split and checked once, each id on its own.
    public struct Collection: Sendable {
        let segments: [String]
        public init(_ path: String) throws {
            segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            _ = try DocumentPath(segments: segments + ["x"])
        }
        public func document(_ id: String) throws -> DocumentPath {
            try DocumentPath.validate(id)
            let path = DocumentPath(checked: segments + [id])
            guard path.segments.reduce(path.segments.count - 1, { $0 + $1.utf8.count }) <= 6_144 else {
                throw TollgateError(.invalidArgument, "document path longer than 6 KiB")
            }
            return path
        }
    }

    private init(checked segments: [String]) { self.segments = segments }

    init(segments: [String]) throws {
        guard segments.count >= 2, segments.count % 2 == 0 else {
            throw TollgateError(.invalidArgument, "a document path has an even number of segments: \(segments.joined(separator: "/"))")
        }
        for segment in segments { try Self.validate(segment) }
        guard segments.reduce(segments.count - 1, { $0 + $1.utf8.count }) <= 6_144 else {
            throw TollgateError(.invalidArgument, "document path longer than 6 KiB")
        }
        self.segments = segments
    }

    static func validate(_ id: String) throws {
        let bytes = id.utf8.count
        guard bytes > 0, bytes <= 1_500 else {
            throw TollgateError(.invalidArgument, "an ID must be 1 to 1,500 bytes")
        }
        guard id != ".", id != "..", !id.utf8.contains(UInt8(ascii: "/")) else {
            throw TollgateError(.invalidArgument, "an ID cannot be '.', '..' or contain '/': \(id)")
        }
        guard !(id.hasPrefix("__") && id.hasSuffix("__") && id.count >= 4) else {
            throw TollgateError(.invalidArgument, "IDs matching __.*__ are reserved: \(id)")
        }
    }

    /// The path of the collection holding the document (`accounts`, `accounts/a1/keys`).
    public var collection: String { segments.dropLast().joined(separator: "/") }
    public var id: String { segments.last! }
    public var description: String { segments.joined(separator: "/") }

    /// The bytes Firestore counts for a document name in its size limit.
    var storageSize: Int { segments.reduce(16) { $0 + $1.utf8.count + 1 } }

    public static func < (lhs: DocumentPath, rhs: DocumentPath) -> Bool {
        // Firestore orders names segment by segment, each by its UTF-8 bytes.
        for (l, r) in zip(lhs.segments, rhs.segments) where !l.utf8.elementsEqual(r.utf8) {
            return l.utf8.lexicographicallyPrecedes(r.utf8)
        }
        return lhs.segments.count < rhs.segments.count
    }

    // Names are equal when their bytes are, as in Firestore: `String ==` would make two
    // canonically equivalent ids (NFC and NFD) one document.
    public static func == (lhs: DocumentPath, rhs: DocumentPath) -> Bool {
        lhs.segments.count == rhs.segments.count && zip(lhs.segments, rhs.segments).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }

    public func hash(into hasher: inout Hasher) {
        for segment in segments {
            hasher.combine(segment.utf8.count)
            for byte in segment.utf8 { hasher.combine(byte) }
        }
    }
}

/// A document as read: its fields and the times the store gave it.
public struct DocumentSnapshot: Sendable, Hashable {
    public let path: DocumentPath
    public let fields: [String: FieldValue]
    public let createTime: Timestamp
    public let updateTime: Timestamp

    public init(path: DocumentPath, fields: [String: FieldValue], createTime: Timestamp, updateTime: Timestamp) {
        self.path = path
        self.fields = fields
        self.createTime = createTime
        self.updateTime = updateTime
    }

    /// Decodes the fields as a `Decodable` type (see ``FieldValueDecoder``).
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try FieldValueDecoder().decode(type, from: fields)
    }
}

/// Firestore's limits, enforced by every `DocumentStore` driver.
public enum FirestoreLimits {
    /// A document's storage size (name + fields + 32 bytes) must not pass 1 MiB.
    public static let maxDocumentBytes = 1_048_576
    /// A commit, or a transaction's writes, holds at most 500 writes.
    public static let maxWritesPerCommit = 500
    /// Maps and arrays nest at most 20 levels deep.
    public static let maxDepth = 20

    /// - Throws: `INVALID_ARGUMENT` when the document is over 1 MiB or nested too deep.
    public static func validate(_ fields: [String: FieldValue], at path: DocumentPath) throws {
        let size = path.storageSize + FieldValue.storageSize(of: fields) + 32
        guard size <= maxDocumentBytes else {
            throw TollgateError(.invalidArgument, "document \(path) is \(size) bytes; Firestore's limit is \(maxDocumentBytes)")
        }
        guard depth(of: .map(fields)) <= maxDepth + 1 else {
            throw TollgateError(.invalidArgument, "document \(path) nests deeper than \(maxDepth) levels")
        }
    }

    private static func depth(of value: FieldValue) -> Int {
        switch value {
        case .map(let fields): 1 + (fields.values.map(depth).max() ?? 0)
        case .array(let values): 1 + (values.map(depth).max() ?? 0)
        default: 0
        }
    }
}
