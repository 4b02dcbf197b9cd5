import Crypto
import Foundation
import TollgateModel

/// Stripe's webhook signature scheme, `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`:
/// HMAC-SHA256, keyed with the whole `whsec_…` secret, over `"<t>.<raw body>"`.
/// <https://docs.stripe.com/webhooks#verify-manually>
///
/// Accepts any matching `v1` for any configured secret (two during a secret roll), never
/// `v0`, and refuses timestamps more than `tolerance` away in either direction (Stripe's
/// SDKs refuse only old ones; a future one is as suspect).
public struct StripeSignatureVerifier: Sendable {
    public static let defaultTolerance: Int64 = 300

    public enum Failure: String, Error, Sendable, CaseIterable {
        case missingHeader = "missing Stripe-Signature header"
        case malformedHeader = "malformed Stripe-Signature header"
        case noV1Signature = "no v1 signature in Stripe-Signature header"
        case timestampOutOfTolerance = "Stripe-Signature timestamp outside the tolerance"
        case noMatchingSignature = "no v1 signature matches the payload"
    }

    // Raw key bytes: SymmetricKey is not Sendable, and building one is cheap.
    private let keys: [Data]
    public let tolerance: Int64

    /// - Parameter secrets: one secret, or two while rolling (the setting holds them
    ///   separated by a comma).
    public init(secrets: [String], tolerance: Int64 = defaultTolerance) {
        keys = secrets.map { Data($0.utf8) }
        self.tolerance = tolerance
    }

    /// Checks `header` against the raw body at time `now`.
    /// - Returns: the signed timestamp.
    @discardableResult
    public func verify(header: String?, body: some DataProtocol, now: Timestamp) throws(Failure) -> Int64 {
        guard let header, !header.isEmpty else { throw .missingHeader }
        var timestamp: Int64?
        var signatures: [Data] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { throw .malformedHeader }
            let key = pair[0].trimmingCharacters(in: .whitespaces)
            let value = pair[1].trimmingCharacters(in: .whitespaces)
            switch key {
            case "t":
                guard timestamp == nil, let t = Int64(value) else { throw .malformedHeader }
                timestamp = t
            case "v1":
                // A v1 that is not 32 bytes of hex can never match; skip it like the SDKs do.
                if let bytes = Self.hexBytes(value), bytes.count == SHA256.byteCount { signatures.append(bytes) }
            default:
                continue  // v0 (test-mode scheme) and unknown schemes are ignored
            }
        }
        guard let timestamp else { throw .malformedHeader }
        guard !signatures.isEmpty else { throw .noV1Signature }
        // `t` is any 64-bit number an attacker chose: the distance is computed without
        // trapping, and its magnitude compared unsigned (|Int64.min| has no Int64).
        let (distance, overflow) = now.secondsSinceEpoch.subtractingReportingOverflow(timestamp)
        guard !overflow, distance.magnitude <= tolerance.magnitude else { throw .timestampOutOfTolerance }
        var payload = Data("\(timestamp).".utf8)
        payload.append(contentsOf: body)
        for key in keys {
            for signature in signatures
            where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: SymmetricKey(data: key)) {
                return timestamp
            }
        }
        throw .noMatchingSignature
    }

    static func hexBytes(_ text: String) -> Data? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes = Data(capacity: utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = Hex.digit(utf8[index]), let low = Hex.digit(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

}

/// Signs payloads as Stripe does: what the emulator's Stripe sender and the tests use.
public struct StripeSigner: Sendable {
    private let key: Data
    public init(secret: String) { key = Data(secret.utf8) }

    /// The `v1` signature (lowercase hex) of `body` at `timestamp`.
    public func signature(timestamp: Int64, body: some DataProtocol) -> String {
        var payload = Data("\(timestamp).".utf8)
        payload.append(contentsOf: body)
        return Hex.encode(HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: key)))
    }

    /// A whole `Stripe-Signature` header value.
    public func header(timestamp: Int64, body: some DataProtocol) -> String {
        "t=\(timestamp),v1=\(signature(timestamp: timestamp, body: body))"
    }
}
