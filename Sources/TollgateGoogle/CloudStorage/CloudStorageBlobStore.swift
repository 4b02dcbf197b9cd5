import Foundation
import Synchronization
import TollgateHTTP
import TollgateModel

/// The `BlobStore` port on Cloud Storage's JSON API (`gs://BUCKET`): media uploads for
/// whole objects, resumable sessions for streamed ones, `ifGenerationMatch` on both
/// (0 = create only), downloads whole or ranged, listing by prefix with page tokens.
public struct CloudStorageBlobStore: BlobStore {
    public let bucket: String
    let api: GoogleAPIClient

    public init(bucket: String, api: GoogleAPIClient) {
        self.bucket = bucket
        self.api = api
    }

    /// - Throws: `INVALID_ARGUMENT` unless the URL is `gs://BUCKET`.
    public init(url: String, api: GoogleAPIClient) throws {
        guard url.hasPrefix("gs://") else { throw TollgateError(.invalidArgument, "not a gs:// URL: \(url)") }
        let bucket = String(url.dropFirst("gs://".count).prefix { $0 != "/" && $0 != "?" })
        guard !bucket.isEmpty else { throw TollgateError(.invalidArgument, "a Cloud Storage URL is gs://BUCKET: \(url)") }
        self.init(bucket: bucket, api: api)
    }

    var bucketPath: String { "/storage/v1/b/\(PercentEncoding.unreserved(bucket))" }
    func objectPath(_ name: String) -> String { bucketPath + "/o/" + PercentEncoding.unreserved(name) }

    static func preconditionQuery(_ generation: Int64?) -> [(String, String)] {
        generation.map { [("ifGenerationMatch", String($0))] } ?? []
    }

    /// A multipart upload (metadata and bytes in one request), as Google's client libraries
    /// send small objects. A precondition makes it safe to repeat: a retried create that
    /// already succeeded fails its precondition instead of writing twice.
    @discardableResult
    public func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64 {
        try BlobName.validate(name)
        var boundary = "tollgate-" + UUID().uuidString
        while data.firstRange(of: Array(boundary.utf8)) != nil { boundary = "tollgate-" + UUID().uuidString }
        let metadata = JSONValue.object(["name": .string(name), "contentType": .string(contentType)]).rendered()
        var body = Array("--\(boundary)\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n\(metadata)\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Type: \(contentType)\r\n\r\n".utf8)
        body += data
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        let response = try await api.send(
            "POST", "/upload" + bucketPath + "/o", query: [("uploadType", "multipart")] + Self.preconditionQuery(ifGenerationMatch),
            headers: [("Content-Type", "multipart/related; boundary=\(boundary)")], body: body, idempotent: ifGenerationMatch != nil)
        return try Self.generation(of: GoogleAPIClient.parse(response.body, service: api.service))
    }

    public func upload(_ name: String, contentType: String, ifGenerationMatch: Int64?) async throws -> any BlobUpload {
        try BlobName.validate(name)
        let response = try await api.send(
            "POST", "/upload" + bucketPath + "/o",
            query: [("uploadType", "resumable"), ("name", name)] + Self.preconditionQuery(ifGenerationMatch),
            headers: [("Content-Type", "application/json; charset=UTF-8"), ("X-Upload-Content-Type", contentType)],
            body: Array(JSONValue.object(["name": .string(name), "contentType": .string(contentType)]).rendered().utf8), idempotent: true)
        guard let session = response.header("Location") else {
            throw TollgateError(.unavailable, "storage started a resumable upload without a Location")
        }
        return CloudStorageUpload(api: api, session: session)
    }

    public func read(_ name: String) async throws -> BlobObject {
        let response = try await api.send("GET", objectPath(name), query: [("alt", "media")], idempotent: true)
        guard let generation = response.header("x-goog-generation").flatMap({ Int64($0) }) else {
            throw TollgateError(.unavailable, "storage sent an object without x-goog-generation")
        }
        return BlobObject(
            name: name, data: response.body, contentType: response.header("Content-Type") ?? "application/octet-stream",
            generation: generation)
    }

    public func read(_ name: String, range: Range<Int64>) async throws -> [UInt8] {
        guard !range.isEmpty else {
            _ = try await attributes(name).orThrow(TollgateError(.notFound, "no object \(name)"))
            return []
        }
        // 416 means the range starts past the end: clamped, that is nothing.
        let response = try await api.send(
            "GET", objectPath(name), query: [("alt", "media")], headers: [("Range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")],
            idempotent: true, accept: [416])
        if response.status == 416 { return [] }
        // A server that ignores Range answers 200 with the whole object.
        if response.status == 200, response.header("Content-Range") == nil {
            let bytes = response.body
            let lower = Int(min(range.lowerBound, Int64(bytes.count)))
            let upper = Int(min(range.upperBound, Int64(bytes.count)))
            return Array(bytes[lower..<upper])
        }
        return response.body
    }

    public func attributes(_ name: String) async throws -> BlobAttributes? {
        do {
            let object = try await api.json("GET", objectPath(name), idempotent: true)
            return try Self.attributes(object)
        } catch let error as TollgateError where error.code == .notFound {
            return nil
        }
    }

    public func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage {
        var query: [(String, String)] = [("prefix", prefix), ("maxResults", String(pageSize))]
        if let pageToken { query.append(("pageToken", pageToken)) }
        let answer = try await api.json("GET", bucketPath + "/o", query: query, idempotent: true)
        let names = (answer["items"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        return BlobPage(names: names, nextPageToken: answer["nextPageToken"]?.stringValue)
    }

    public func delete(_ name: String, ifGenerationMatch: Int64?) async throws {
        _ = try await api.send(
            "DELETE", objectPath(name), query: Self.preconditionQuery(ifGenerationMatch), idempotent: ifGenerationMatch != nil)
    }

    /// A V4 signed URL, signed as the function's service account (a key file's key, or
    /// the IAM Credentials API's `signBlob` on Cloud Run). An emulator checks no signature:
    /// there it is the object's media link.
    public func signedURL(_ name: String, expiresInSeconds: Int64, now: Timestamp) async throws -> String {
        try SignedURLV4.checkExpiry(expiresInSeconds)
        try BlobName.validate(name)
        guard let credentials = api.endpoint.credentials else { return api.endpoint.baseURL + objectPath(name) + "?alt=media" }
        return try await SignedURLBuilder(credentials: credentials, baseURL: "https://storage.googleapis.com").url(
            bucket: bucket, object: name, expiresInSeconds: expiresInSeconds, now: now)
    }

    static func generation(of object: JSONValue) throws -> Int64 {
        // int64 fields of the JSON API are strings.
        guard let generation = object["generation"]?.stringValue.flatMap({ Int64($0) }) ?? object["generation"]?.integerValue else {
            throw TollgateError(.unavailable, "storage answered without the object's generation")
        }
        return generation
    }

    static func attributes(_ object: JSONValue) throws -> BlobAttributes {
        guard let name = object["name"]?.stringValue,
            let size = object["size"]?.stringValue.flatMap({ Int64($0) }) ?? object["size"]?.integerValue
        else { throw TollgateError(.unavailable, "storage sent object metadata without name or size") }
        return BlobAttributes(
            name: name, size: size, contentType: object["contentType"]?.stringValue ?? "application/octet-stream",
            generation: try generation(of: object))
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> any Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}

/// A resumable upload session. Each appended chunk is held until the next arrives, so
/// the last one can be sent with the total size that closes the session; every earlier
/// chunk is a multiple of 256 KiB, as Cloud Storage requires. The session URI is a
/// bearer capability: it is never logged (the client logs URLs without their query).
final class CloudStorageUpload: BlobUpload {
    private struct State {
        var held: [UInt8]?
        var sent: Int64 = 0
        var finished = false
    }

    let api: GoogleAPIClient
    let session: String
    private let state = Mutex(State())

    init(api: GoogleAPIClient, session: String) {
        self.api = api
        self.session = session
    }

    func append(_ chunk: [UInt8]) async throws {
        guard !chunk.isEmpty else { return }
        let (previous, offset) = try state.withLock { state -> ([UInt8]?, Int64) in
            if let held = state.held, held.count % Self.chunkGranularity != 0 {
                throw TollgateError(.invalidArgument, "a chunk that is not a multiple of 256 KiB must be the last")
            }
            let previous = state.held
            state.held = chunk
            return (previous, state.sent)
        }
        guard let previous else { return }
        try await put(previous, offset: offset, total: nil)
        state.withLock { $0.sent += Int64(previous.count) }
    }

    func finish() async throws -> Int64 {
        let (last, offset) = state.withLock { ($0.held ?? [], $0.sent) }
        let object = try await put(last, offset: offset, total: offset + Int64(last.count))
        state.withLock { $0.finished = true }
        return try CloudStorageBlobStore.generation(of: object)
    }

    /// One `PUT` to the session. An intermediate chunk is answered 308 (Resume Incomplete);
    /// the last with the object, or 412 when the precondition no longer holds.
    @discardableResult
    private func put(_ bytes: [UInt8], offset: Int64, total: Int64?) async throws -> JSONValue {
        let size = total.map(String.init) ?? "*"
        let range = bytes.isEmpty ? "bytes */\(size)" : "bytes \(offset)-\(offset + Int64(bytes.count) - 1)/\(size)"
        let response = try await api.send(
            "PUT", session, headers: [("Content-Range", range)], body: bytes, idempotent: true, accept: total == nil ? [308] : [])
        if total == nil {
            // The server may have persisted less than sent; Cloud Storage says so in Range.
            if let persisted = response.header("Range"), let end = persisted.split(separator: "-").last.flatMap({ Int64($0) }),
                end + 1 != offset + Int64(bytes.count)
            {
                throw TollgateError(.unavailable, "storage persisted \(end + 1) bytes of \(offset + Int64(bytes.count))")
            }
            return .object([:])
        }
        return try GoogleAPIClient.parse(response.body, service: api.service)
    }
}
