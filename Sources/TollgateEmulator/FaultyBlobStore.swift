import Synchronization
import TollgateModel

/// A blob store that fails on command, to stop a writer half-way as a killed instance
/// would: after `succeeding` more writes (object writes, upload starts, chunks,
/// finishes, deletes), every write throws `UNAVAILABLE` until it is healed.
final class FaultyBlobStore: BlobStore {
    let base: any BlobStore
    /// Writes still allowed before failing; nil when healthy.
    private let allowance = Mutex<Int?>(nil)

    init(_ base: any BlobStore) { self.base = base }

    func fail(after succeeding: Int) { allowance.withLock { $0 = succeeding } }
    func heal() { allowance.withLock { $0 = nil } }

    func check(_ operation: String) throws {
        let fails = allowance.withLock { allowance -> Bool in
            guard let left = allowance else { return false }
            if left > 0 {
                allowance = left - 1
                return false
            }
            return true
        }
        if fails { throw TollgateError(.unavailable, "injected blob store failure (\(operation))") }
    }

    func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64 {
        try check("write \(name)")
        return try await base.write(name, data, contentType: contentType, ifGenerationMatch: ifGenerationMatch)
    }

    func upload(_ name: String, contentType: String, ifGenerationMatch: Int64?) async throws -> any BlobUpload {
        try check("upload \(name)")
        return FaultyUpload(base: try await base.upload(name, contentType: contentType, ifGenerationMatch: ifGenerationMatch), store: self)
    }

    func read(_ name: String) async throws -> BlobObject { try await base.read(name) }
    func read(_ name: String, range: Range<Int64>) async throws -> [UInt8] { try await base.read(name, range: range) }
    func attributes(_ name: String) async throws -> BlobAttributes? { try await base.attributes(name) }
    func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage {
        try await base.list(prefix: prefix, pageSize: pageSize, pageToken: pageToken)
    }

    func delete(_ name: String, ifGenerationMatch: Int64?) async throws {
        try check("delete \(name)")
        try await base.delete(name, ifGenerationMatch: ifGenerationMatch)
    }

    func signedURL(_ name: String, expiresInSeconds: Int64, now: Timestamp) async throws -> String {
        try await base.signedURL(name, expiresInSeconds: expiresInSeconds, now: now)
    }

    struct FaultyUpload: BlobUpload {
        let base: any BlobUpload
        let store: FaultyBlobStore
        func append(_ chunk: [UInt8]) async throws {
            try store.check("append")
            try await base.append(chunk)
        }
        func finish() async throws -> Int64 {
            try store.check("finish")
            return try await base.finish()
        }
    }
}
