import Crypto
import Foundation
import TollgateModel

/// Walks the chain of export manifests and checks each day: the signature with a trusted
/// key, every object's SHA-256 and size, and the link to the previous day's manifest.
public struct ExportVerifier: Sendable {
    public enum Verdict: String, Sendable {
        case valid
        /// The day has no manifest, or an object it lists is gone.
        case missing
        case alteredObject = "altered object"
        case alteredManifest = "altered manifest"
        case brokenChain = "broken chain"
        case unknownKey = "unknown key"
        /// Retention removed the objects on purpose; the manifest still verifies.
        case expired

        public var isFailure: Bool { self != .valid && self != .expired }
    }

    public struct DayReport: Sendable {
        public var day: UTCDay
        public var verdict: Verdict
        public var detail: String
    }

    let blobs: any BlobStore
    let layout: ExportLayout
    /// Keys to trust, by id. Nil trusts the keys published in the bucket, which proves
    /// integrity against accidents but not against someone who can write the bucket.
    let trustedKeys: [String: ExportPublicKey]?
    /// Days whose objects retention deleted (from `exports/{day}`), reported as expired.
    let expiredDays: Set<UTCDay>

    public init(blobs: any BlobStore, layout: ExportLayout, trustedKeys: [ExportPublicKey]? = nil, expiredDays: Set<UTCDay> = []) {
        self.blobs = blobs
        self.layout = layout
        self.trustedKeys = trustedKeys.map { Dictionary($0.map { ($0.keyId, $0) }, uniquingKeysWith: { first, _ in first }) }
        self.expiredDays = expiredDays
    }

    public func verify(from first: UTCDay, to last: UTCDay) async throws -> [DayReport] {
        var reports: [DayReport] = []
        var day = first
        while day <= last {
            reports.append(try await verify(day))
            day = day.next
        }
        return reports
    }

    public func verify(_ day: UTCDay) async throws -> DayReport {
        func report(_ verdict: Verdict, _ detail: String) -> DayReport { DayReport(day: day, verdict: verdict, detail: detail) }
        guard let bytes = try await read(layout.manifest(day)) else { return report(.missing, "no manifest") }
        guard let signatureBytes = try await read(layout.signature(day)), let signature = try? ExportSignature(document: signatureBytes)
        else { return report(.alteredManifest, "the signature is missing or unreadable") }
        guard let key = try await key(signature.keyId) else { return report(.unknownKey, "key \(signature.keyId) is not trusted") }
        guard key.isValid(signature, for: bytes) else { return report(.alteredManifest, "the signature does not verify") }
        guard let manifest = try? ExportManifest(parsing: bytes), manifest.day == day, manifest.keyId == signature.keyId else {
            return report(.alteredManifest, "the signed manifest is not this day's")
        }
        if let previous = manifest.previous {
            guard let previousBytes = try await read(layout.manifest(previous.day)) else {
                return report(.brokenChain, "the previous manifest (\(previous.day)) is missing")
            }
            guard Hex.encode(SHA256.hash(data: previousBytes)) == previous.sha256 else {
                return report(.brokenChain, "the previous manifest (\(previous.day)) is not the one this day chained to")
            }
        }
        if expiredDays.contains(day) { return report(.expired, "objects removed by retention; manifest verified") }
        for object in manifest.objects {
            guard let attributes = try await blobs.attributes(object.name) else { return report(.missing, "\(object.name) is missing") }
            guard attributes.size == object.bytes, try await BlobDigest.sha256(of: object.name, in: blobs) == object.sha256 else {
                return report(.alteredObject, "\(object.name) does not match its SHA-256")
            }
        }
        return report(.valid, "\(manifest.objects.count) object\(manifest.objects.count == 1 ? "" : "s"), \(manifest.records) records")
    }

    func key(_ id: String) async throws -> ExportPublicKey? {
        if let trustedKeys { return trustedKeys[id] }
        guard let document = try await read(layout.publicKey(id)) else { return nil }
        return try? ExportPublicKey(document: document)
    }

    func read(_ name: String) async throws -> [UInt8]? {
        do { return try await blobs.read(name).data } catch let error as TollgateError where error.code == .notFound { return nil }
    }
}
