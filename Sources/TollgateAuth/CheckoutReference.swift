import Crypto
import Foundation
import TollgateModel

/// The `client_reference_id` Tollgate hands the dashboard for Stripe Checkout.
///
/// Whoever opens Checkout chooses `client_reference_id` (a Payment Link takes it from its
/// URL, a pricing table from an attribute), so a bare account id there proves nothing. A
/// reference is minted by account-api for a user who manages the account and carries an
/// HMAC over the account id, an expiry and a nonce, under a secret that account-api and
/// stripe-webhook share (`TOLLGATE_CHECKOUT_SECRET`). stripe-webhook links a customer by
/// it only when the MAC verifies and the reference had not expired when the Checkout
/// Session was created.
///
/// Text: `tgcr1_<expiry, Unix seconds>_<nonce, 16 hex>_<MAC, 32 hex>_<account id>`: only
/// the characters Stripe allows in `client_reference_id` (letters, digits, `-`, `_`), and
/// at most 195 of its 200. The account id comes last, so it may itself contain `_`.
public struct CheckoutReference: Sendable, Hashable {
    public static let version = "tgcr1"
    /// How long a minted reference names its account: the dashboard mints one right before
    /// it sends the customer to Checkout.
    public static let lifetimeSeconds: Int64 = 3_600

    public var accountId: String
    public var expires: Timestamp
    /// 8 random bytes, hex: no two references are alike, even for one account and second.
    public var nonce: String

    public init(accountId: String, expires: Timestamp, nonce: String) {
        self.accountId = accountId
        self.expires = expires
        self.nonce = nonce
    }

    /// Why a text names no account.
    public enum Refusal: String, Error, Sendable {
        /// Not a reference at all: a bare account id, a cart id, anything a client typed.
        case notAReference = "not_a_reference"
        case malformed
        /// The MAC does not verify under any current secret.
        case forged
        case expired
    }
}

/// Mints and verifies ``CheckoutReference``s with `TOLLGATE_CHECKOUT_SECRET`: one secret,
/// or two separated by a comma while rotating (the first mints, either verifies).
public struct CheckoutReferenceSigner: Sendable {
    /// The secrets' bytes (SymmetricKey is not Sendable), the minting one first.
    private let keys: [Data]

    /// - Throws: `INVALID_ARGUMENT` for no secret, more than two, or one shorter than 32 bytes.
    public init(secrets: [String]) throws {
        guard (1...2).contains(secrets.count), secrets.allSatisfy({ $0.utf8.count >= 32 }) else {
            throw TollgateError(.invalidArgument, "the checkout secret is one or two values of at least 32 bytes each")
        }
        keys = secrets.map { Data($0.utf8) }
    }

    /// A reference to `accountId` that expires ``CheckoutReference/lifetimeSeconds`` after `now`.
    /// - Precondition: `accountId` is an identifier (`InputBounds.isIdentifier`).
    public func mint(accountId: String, now: Timestamp, using generator: inout some RandomNumberGenerator) -> String {
        let nonce = Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let reference = CheckoutReference(
            accountId: accountId, expires: now.adding(seconds: CheckoutReference.lifetimeSeconds), nonce: nonce)
        return text(of: reference)
    }

    /// The text of `reference`, signed with the first secret.
    public func text(of reference: CheckoutReference) -> String {
        let expiry = String(reference.expires.secondsSinceEpoch)
        let mac = Self.mac(
            version: CheckoutReference.version, expiry: expiry, nonce: reference.nonce, accountId: reference.accountId, key: keys[0])
        return [CheckoutReference.version, expiry, reference.nonce, Hex.encode(mac), reference.accountId].joined(separator: "_")
    }

    /// The account `text` names, if Tollgate minted it and it was still good at `at` (the
    /// Checkout Session's creation).
    public func verify(_ text: String, at: Timestamp) -> Result<CheckoutReference, CheckoutReference.Refusal> {
        guard text.hasPrefix(CheckoutReference.version + "_") else { return .failure(.notAReference) }
        let parts = text.split(separator: "_", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, text.utf8.count <= 200, let seconds = Int64(parts[1]), parts[1].utf8.allSatisfy(Self.isDigit),
            let expires = Timestamp(unixSeconds: seconds), parts[2].utf8.count == 16, parts[2].utf8.allSatisfy(Self.isHexDigit),
            parts[3].utf8.count == 32, parts[3].utf8.allSatisfy(Self.isHexDigit), InputBounds.isIdentifier(parts[4])
        else { return .failure(.malformed) }
        let matches = keys.contains { key in
            let expected = Hex.encode(Self.mac(version: parts[0], expiry: parts[1], nonce: parts[2], accountId: parts[4], key: key))
            return Self.constantTimeEqual(Array(expected.utf8), Array(parts[3].utf8))
        }
        guard matches else { return .failure(.forged) }
        guard at < expires else { return .failure(.expired) }
        return .success(CheckoutReference(accountId: parts[4], expires: expires, nonce: parts[2]))
    }

    /// The first 16 bytes of HMAC-SHA256 over the fields, each length-free field separated
    /// by `|`, which none of them may contain.
    private static func mac(version: String, expiry: String, nonce: String, accountId: String, key: Data) -> [UInt8] {
        let message = Data("\(version)|\(expiry)|\(nonce)|\(accountId)".utf8)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)).prefix(16))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (48...57).contains(byte) }
    private static func isHexDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (97...102).contains(byte) }
}
