/// Objects in a bucket, with Cloud Storage's semantics: whole-object writes, a generation
/// number per write, preconditions on it, listing by prefix in name order.
public protocol BlobStore: Sendable {
    /// Writes the object. `ifGenerationMatch: 0` means "only if it does not exist".
    /// - Returns: the new generation.
    /// - Throws: `FAILED_PRECONDITION` when the precondition fails (HTTP 412 in GCS).
    @discardableResult
    func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64
    /// - Throws: `NOT_FOUND`.
    func read(_ name: String) async throws -> BlobObject
    /// Objects whose names start with `prefix`, in name order, after `pageToken`.
    func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage
    /// - Throws: `NOT_FOUND`, `FAILED_PRECONDITION`.
    func delete(_ name: String, ifGenerationMatch: Int64?) async throws
}

public struct BlobObject: Sendable, Hashable {
    public var name: String
    public var data: [UInt8]
    public var contentType: String
    public var generation: Int64
    public init(name: String, data: [UInt8], contentType: String, generation: Int64) {
        self.name = name
        self.data = data
        self.contentType = contentType
        self.generation = generation
    }
}

public struct BlobPage: Sendable, Hashable {
    public var names: [String]
    public var nextPageToken: String?
    public init(names: [String], nextPageToken: String?) {
        self.names = names
        self.nextPageToken = nextPageToken
    }
}

/// Cloud Storage's rules for object names: 1 to 1,024 bytes of UTF-8, no carriage return
/// or line feed, not `.` or `..`, not starting with `.well-known/acme-challenge/`.
public enum BlobName {
    public static func validate(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= 1_024, name != ".", name != "..",
            !name.contains("\r"), !name.contains("\n"), !name.hasPrefix(".well-known/acme-challenge/")
        else { throw TollgateError(.invalidArgument, "invalid object name '\(name)'") }
    }
}
