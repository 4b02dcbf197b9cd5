import Crypto
import Foundation
import TollgateModel

/// API keys: `tg_live_` or `tg_test_` and 32 characters of base62 (190 bits from the
/// system's CSPRNG). Only a keyed hash is stored: HMAC-SHA256 with a pepper held as a
/// secret (`TOLLGATE_KEY_PEPPER`), so a copy of the database alone cannot test guesses.
/// The keyed hash is the lookup key itself: no secret is compared in process, and the
/// timing of a lookup says nothing an attacker can use without the pepper.
public struct APIKeys: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case live, test }

    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let randomLength = 32
    /// `tg_live_` plus four characters: enough to recognise a key, far too little to guess it.
    static let displayPrefixLength = 12

    private let pepper: Data

    /// - Throws: `INVALID_ARGUMENT` for a pepper shorter than 32 bytes.
    public init(pepper: String) throws {
        guard pepper.utf8.count >= 32 else {
            throw TollgateError(.invalidArgument, "the key pepper must be at least 32 bytes")
        }
        self.pepper = Data(pepper.utf8)
    }

    /// A new random key from the system's CSPRNG. Its plaintext exists only in what this returns.
    public static func generate(mode: Mode) -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(mode: mode, using: &generator)
    }

    /// A key from `generator`: the emulator passes a seeded one so replays are repeatable.
    public static func generate(mode: Mode, using generator: inout some RandomNumberGenerator) -> String {
        let random = (0..<randomLength).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return "tg_\(mode.rawValue)_" + String(decoding: random, as: UTF8.self)
    }

    /// Whether `text` has the shape of a Tollgate key (checked before any lookup).
    public static func isWellFormed(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 8 + randomLength, text.hasPrefix("tg_live_") || text.hasPrefix("tg_test_") else { return false }
        return utf8[8...].allSatisfy { alphabet.contains($0) }
    }

    /// The document id of a key: its keyed hash, lowercase hex.
    public func hash(_ key: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(key.utf8), using: SymmetricKey(data: pepper)))
    }

    public static func displayPrefix(of key: String) -> String { String(key.prefix(displayPrefixLength)) }
}
