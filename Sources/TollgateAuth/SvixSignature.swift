import Crypto
import Foundation
import TollgateModel

/// Svix's webhook signature scheme, as Clerk delivers its webhooks: headers `svix-id`,
/// `svix-timestamp` (Unix seconds) and `svix-signature` (space-separated `v1,<base64>`
/// entries); each signature is HMAC-SHA256 over `"{id}.{timestamp}.{raw body}"`, keyed
/// with the base64-decoded part of the `whsec_…` secret.
/// <https://docs.svix.com/receiving/verifying-payloads/how-manual>
///
/// Accepts any matching `v1` for any configured secret (two while rotating), compares in
/// constant time, and refuses timestamps more than `tolerance` away in either direction.
/// The unbranded `webhook-id`/`webhook-timestamp`/`webhook-signature` headers (Standard
/// Webhooks, which Svix also sends) are read when no `svix-` header is present, as Svix's
/// own libraries do.
public struct SvixSignatureVerifier: Sendable {
    public static let defaultTolerance: Int64 = 300

    public enum Failure: String, Error, Sendable, CaseIterable {
        case missingHeaders = "missing svix-id, svix-timestamp or svix-signature header"
        case malformedTimestamp = "svix-timestamp is not a whole number of seconds"
        case timestampOutOfTolerance = "svix-timestamp outside the tolerance"
        case noV1Signature = "no v1 signature in svix-signature"
        case noMatchingSignature = "no v1 signature matches the payload"
    }

    /// What a verified request says about itself.
    public struct Message: Sendable, Hashable {
        public var id: String
        public var timestamp: Int64
    }

    // Raw key bytes: SymmetricKey is not Sendable, and building one is cheap.
    private let keys: [Data]
    public let tolerance: Int64

    /// - Parameter secrets: `whsec_<base64>` secrets, one or two while rotating.
    /// - Throws: `INVALID_ARGUMENT` for a secret that is not `whsec_` and base64.
    public init(secrets: [String], tolerance: Int64 = defaultTolerance) throws {
        keys = try secrets.map(Self.key)
        self.tolerance = tolerance
    }

    /// The HMAC key of a `whsec_` secret: its base64 part, decoded.
    static func key(_ secret: String) throws -> Data {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), key.count >= 16 else {
            // Never echo the value: it is a secret.
            throw TollgateError(.invalidArgument, "a Svix secret is whsec_ followed by base64 of at least 16 bytes")
        }
        return key
    }

    /// Checks the request's headers against its raw body at `now`.
    /// - Parameter header: the request's header by name (case-insensitive, first value).
    public func verify(header: (String) -> String?, body: some DataProtocol, now: Timestamp) throws(Failure) -> Message {
        let branded = header("svix-id") != nil || header("svix-timestamp") != nil || header("svix-signature") != nil
        let prefix = branded ? "svix-" : "webhook-"
        guard let id = header(prefix + "id"), let timestampText = header(prefix + "timestamp"),
            let signatureHeader = header(prefix + "signature"), !id.isEmpty, !signatureHeader.isEmpty
        else { throw .missingHeaders }
        guard let timestamp = Int64(timestampText.trimmingCharacters(in: .whitespaces)) else { throw .malformedTimestamp }
        // An attacker chose `timestamp`: the distance is computed without trapping.
        let (distance, overflow) = now.secondsSinceEpoch.subtractingReportingOverflow(timestamp)
        guard !overflow, distance.magnitude <= tolerance.magnitude else { throw .timestampOutOfTolerance }
        var signatures: [Data] = []
        for entry in signatureHeader.split(separator: " ") {
            let parts = entry.split(separator: ",", maxSplits: 1)
            // Other versions (and entries that are not base64 of 32 bytes) can never match.
            guard parts.count == 2, parts[0] == "v1", let bytes = Data(base64Encoded: String(parts[1])), bytes.count == SHA256.byteCount
            else { continue }
            signatures.append(bytes)
        }
        guard !signatures.isEmpty else { throw .noV1Signature }
        let payload = SvixSigner.payload(id: id, timestamp: timestamp, body: body)
        for key in keys {
            for signature in signatures
            where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: SymmetricKey(data: key)) {
                return Message(id: id, timestamp: timestamp)
            }
        }
        throw .noMatchingSignature
    }
}

/// Signs payloads as Svix does: what the emulator's Clerk sender and the tests use.
public struct SvixSigner: Sendable {
    private let key: Data

    /// - Throws: `INVALID_ARGUMENT` for a secret that is not `whsec_` and base64.
    public init(secret: String) throws { key = try SvixSignatureVerifier.key(secret) }

    static func payload(id: String, timestamp: Int64, body: some DataProtocol) -> Data {
        var payload = Data("\(id).\(timestamp).".utf8)
        payload.append(contentsOf: body)
        return payload
    }

    /// The `v1,<base64>` entry for `body` sent as message `id` at `timestamp`.
    public func signature(id: String, timestamp: Int64, body: some DataProtocol) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Self.payload(id: id, timestamp: timestamp, body: body), using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The three headers Svix sends.
    public func headers(id: String, timestamp: Int64, body: some DataProtocol) -> [(name: String, value: String)] {
        [
            (name: "svix-id", value: id), (name: "svix-timestamp", value: String(timestamp)),
            (name: "svix-signature", value: signature(id: id, timestamp: timestamp, body: body)),
        ]
    }
}
