/// Objects in a bucket, with Cloud Storage's semantics: whole-object writes, a generation
/// number per write, preconditions on it, listing by prefix in name order.
public protocol BlobStore: Sendable {
    /// Writes the object. `ifGenerationMatch: 0` means "only if it does not exist".
    /// - Returns: the new generation.
    /// - Throws: `FAILED_PRECONDITION` when the precondition fails (HTTP 412 in GCS).
    @discardableResult
    func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64
    /// Starts a streamed write (a resumable upload in GCS): the object appears, whole,
    /// only when the upload finishes, and the precondition is checked then.
    func upload(_ name: String, contentType: String, ifGenerationMatch: Int64?) async throws -> any BlobUpload
    /// - Throws: `NOT_FOUND`.
    func read(_ name: String) async throws -> BlobObject
    /// The bytes in `range` (clamped to the object's size): a ranged download.
    /// - Throws: `NOT_FOUND`.
    func read(_ name: String, range: Range<Int64>) async throws -> [UInt8]
    /// The object's metadata, or nil when there is none.
    func attributes(_ name: String) async throws -> BlobAttributes?
    /// Objects whose names start with `prefix`, in name order, after `pageToken`.
    func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage
    /// - Throws: `NOT_FOUND`, `FAILED_PRECONDITION`.
    func delete(_ name: String, ifGenerationMatch: Int64?) async throws
    /// A link anyone holding it may GET the object with until it expires, no credentials
    /// needed: a V4 signed URL in Cloud Storage. Like GCS, it does not look the object up.
    /// - Throws: `INVALID_ARGUMENT` for an expiry outside 1 second to 7 days.
    func signedURL(_ name: String, expiresInSeconds: Int64, now: Timestamp) async throws -> String
}

/// What every V4 signed URL shares, whoever signs it: its expiry bounds and its date form.
public enum SignedURLV4 {
    /// The expiries V4 allows: 1 second to 7 days.
    public static let expiries: ClosedRange<Int64> = 1...604_800

    public static func checkExpiry(_ seconds: Int64) throws {
        guard expiries.contains(seconds) else {
            throw TollgateError(.invalidArgument, "a V4 signed URL expires within 1 second to 7 days")
        }
    }

    /// `X-Goog-Date`'s form: `20260101T000000Z`.
    public static func dateStamp(_ now: Timestamp) -> String {
        let seconds = now.secondsSinceEpoch
        let (year, month, day) = Timestamp.civil(fromDays: Int(seconds / 86_400))
        let second = Int(seconds % 86_400)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)\(two(month))\(two(day))T\(two(second / 3_600))\(two(second / 60 % 60))\(two(second % 60))Z"
    }
}

/// A streamed write in progress. Chunks are appended in order; nothing is visible until
/// ``finish()``, and an upload never finished leaves nothing behind (GCS discards an
/// unfinished resumable session after a week).
public protocol BlobUpload: Sendable {
    /// Cloud Storage requires every chunk but the last to be a multiple of this.
    static var chunkGranularity: Int { get }
    func append(_ chunk: [UInt8]) async throws
    /// - Returns: the new generation.
    /// - Throws: `FAILED_PRECONDITION` when the precondition fails.
    func finish() async throws -> Int64
}

extension BlobUpload {
    public static var chunkGranularity: Int { 256 * 1_024 }
}

public struct BlobAttributes: Sendable, Hashable {
    public var name: String
    public var size: Int64
    public var contentType: String
    public var generation: Int64
    public init(name: String, size: Int64, contentType: String, generation: Int64) {
        self.name = name
        self.size = size
        self.contentType = contentType
        self.generation = generation
    }
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
