import Crypto
import TollgateModel

/// SHA-256 of a stored object, read in ranges so a large object is never held whole.
public enum BlobDigest {
    static let rangeBytes: Int64 = 8 << 20

    /// - Returns: nil when the object does not exist.
    public static func sha256(of name: String, in blobs: any BlobStore) async throws -> String? {
        guard let attributes = try await blobs.attributes(name) else { return nil }
        var hash = SHA256()
        var offset: Int64 = 0
        while offset < attributes.size {
            let bytes = try await blobs.read(name, range: offset..<min(offset + rangeBytes, attributes.size))
            guard !bytes.isEmpty else { break }
            hash.update(data: bytes)
            offset += Int64(bytes.count)
        }
        return Hex.encode(hash.finalize())
    }
}
