import Crypto
import Foundation
import TollgateModel

/// The Ed25519 key that signs export manifests, read from `TOLLGATE_EXPORT_SIGNING_KEY`
/// (the 32-byte private key, base64). Its id is derived from the public key, so a new
/// key gets a new id and manifests signed before a rotation still name the key that
/// verifies them.
public struct ExportSigner: Sendable {
    // The raw key, not CryptoKit's type (not Sendable here): rebuilt per signature.
    private let raw: Data
    public let keyId: String

    /// - Throws: `INVALID_ARGUMENT` when the text is not a base64 32-byte key.
    public init(base64 text: String) throws {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), raw.count == 32,
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else { throw TollgateError(.invalidArgument, "the export signing key must be 32 bytes of Ed25519 private key, base64") }
        self.raw = raw
        keyId = ExportPublicKey.id(of: key.publicKey)
    }

    /// A fresh key, base64, for `tollgate export signing-key`.
    public static func generate() -> String { Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString() }

    private var key: Curve25519.Signing.PrivateKey {
        // Validated in init: 32 bytes make a key.
        try! Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }

    public var publicKey: ExportPublicKey { ExportPublicKey(key.publicKey) }

    public func sign(_ manifest: [UInt8]) throws -> ExportSignature {
        ExportSignature(keyId: keyId, signature: try key.signature(for: manifest))
    }
}

/// A public key as published beside the exports: `keys/{keyId}.json`.
public struct ExportPublicKey: Sendable {
    private let raw: Data
    public let keyId: String
    private var key: Curve25519.Signing.PublicKey {
        // Validated when made: 32 bytes make a key.
        try! Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    init(_ key: Curve25519.Signing.PublicKey) {
        raw = key.rawRepresentation
        keyId = Self.id(of: key)
    }

    /// The first 16 bytes of the SHA-256 of the raw public key, hex.
    static func id(of key: Curve25519.Signing.PublicKey) -> String { Hex.encode(SHA256.hash(data: key.rawRepresentation).prefix(16)) }

    public var document: [UInt8] {
        let json: JSONValue = .object([
            "algorithm": .string("Ed25519"), "keyId": .string(keyId), "publicKey": .string(key.rawRepresentation.base64EncodedString()),
        ])
        return Array((json.rendered() + "\n").utf8)
    }

    /// Reads a published key document, checking its id matches the key.
    public init(document: [UInt8]) throws {
        guard let json = try? JSONValue.parse(Data(document)), json["algorithm"]?.stringValue == "Ed25519",
            let text = json["publicKey"]?.stringValue, let raw = Data(base64Encoded: text),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
        else { throw TollgateError(.invalidArgument, "not an Ed25519 public key document") }
        self.init(key)
        guard json["keyId"]?.stringValue == keyId else { throw TollgateError(.invalidArgument, "key id does not match the key") }
    }

    public func isValid(_ signature: ExportSignature, for manifest: [UInt8]) -> Bool {
        signature.keyId == keyId && key.isValidSignature(signature.signature, for: manifest)
    }
}

/// The detached signature of a manifest: `manifest.json.sig`.
public struct ExportSignature: Sendable {
    public var keyId: String
    public var signature: Data

    public var document: [UInt8] {
        let json: JSONValue = .object([
            "algorithm": .string("Ed25519"), "keyId": .string(keyId), "signature": .string(signature.base64EncodedString()),
        ])
        return Array((json.rendered() + "\n").utf8)
    }

    public init(keyId: String, signature: Data) {
        self.keyId = keyId
        self.signature = signature
    }

    public init(document: [UInt8]) throws {
        guard let json = try? JSONValue.parse(Data(document)), json["algorithm"]?.stringValue == "Ed25519",
            let keyId = json["keyId"]?.stringValue, let text = json["signature"]?.stringValue, let signature = Data(base64Encoded: text)
        else { throw TollgateError(.invalidArgument, "not an Ed25519 signature document") }
        self.keyId = keyId
        self.signature = signature
    }
}
