import Crypto
import TollgateExport
import TollgateModel

/// Writes one export object as it is produced: lines are gzip-compressed, hashed, and
/// uploaded in chunks of a fixed size, so memory holds one chunk whatever the object's
/// size. An object that already exists (a re-run) is not uploaded again: the same bytes
/// are produced and hashed, and must match what is stored.
final class PartWriter {
    let name: String
    let kind: String
    private let blobs: any BlobStore
    private let chunkBytes: Int
    private let compressor: GzipCompressor
    private var upload: (any BlobUpload)?
    private var existing: BlobAttributes?
    private var pending: [UInt8] = []
    private var staged: [UInt8] = []
    private var hash = SHA256()
    private var bytes: Int64 = 0
    private(set) var records: Int64 = 0
    private(set) var units: Int64 = 0
    private var firstTime = Timestamp(microsecondsSinceEpoch: Int64.max)
    private var lastTime = Timestamp(microsecondsSinceEpoch: Int64.min)

    static let contentType = "application/x-ndjson"

    init(name: String, kind: String, blobs: any BlobStore, chunkBytes: Int, level: Int32) throws {
        self.name = name
        self.kind = kind
        self.blobs = blobs
        self.chunkBytes = max(chunkBytes / (256 * 1_024), 1) * 256 * 1_024
        compressor = try GzipCompressor(level: level)
        staged.reserveCapacity(64 * 1_024)
    }

    func start() async throws {
        existing = try await blobs.attributes(name)
        if existing == nil { upload = try await blobs.upload(name, contentType: Self.contentType, ifGenerationMatch: 0) }
    }

    func append(line: [UInt8], units: Int64, time: Timestamp) async throws {
        staged.append(contentsOf: line)
        staged.append(0x0A)
        records += 1
        // Recorded units are bounded (≤ 10⁹ an event), so a day's sum fits; a ledger
        // written before the bound could hold more: a clear failure, never a trap.
        self.units = try self.units.checkedAdding(units, "the units of \(name)")
        if time < firstTime { firstTime = time }
        if time > lastTime { lastTime = time }
        if staged.count >= 64 * 1_024 { try await drain(final: false) }
    }

    /// Compresses what is staged and ships whole chunks.
    private func drain(final: Bool) async throws {
        var out: [UInt8] = []
        try compressor.compress(staged, into: &out)
        staged.removeAll(keepingCapacity: true)
        if final { try compressor.finish(into: &out) }
        hash.update(data: out)
        bytes += Int64(out.count)
        guard let upload else { return }
        pending.append(contentsOf: out)
        while pending.count >= chunkBytes || (final && !pending.isEmpty) {
            let size = final ? min(pending.count, chunkBytes) : chunkBytes
            try await upload.append(Array(pending[0..<size]))
            pending.removeFirst(size)
        }
    }

    /// Completes the object. - Returns: its manifest entry.
    func finish() async throws -> ExportManifest.Object {
        try await drain(final: true)
        let digest = Hex.encode(hash.finalize())
        if let upload {
            do {
                _ = try await upload.finish()
            } catch let error as TollgateError where error.code == .failedPrecondition {
                // Another run finished the same object first: it must hold the same bytes.
                try await Self.check(name, sha256: digest, in: blobs)
            }
        } else if let existing {
            guard existing.size == bytes else {
                throw TollgateError(.failedPrecondition, "\(name) exists with \(existing.size) bytes where a re-run makes \(bytes)")
            }
            try await Self.check(name, sha256: digest, in: blobs)
        }
        return ExportManifest.Object(
            kind: kind, name: name, sha256: digest, bytes: bytes, records: records, units: units, firstTime: firstTime, lastTime: lastTime)
    }

    /// - Throws: `FAILED_PRECONDITION` when the stored object's SHA-256 is not `sha256`.
    static func check(_ name: String, sha256: String, in blobs: any BlobStore) async throws {
        guard try await BlobDigest.sha256(of: name, in: blobs) == sha256 else {
            throw TollgateError(.failedPrecondition, "\(name) exists with other content than a re-run produces")
        }
    }
}
