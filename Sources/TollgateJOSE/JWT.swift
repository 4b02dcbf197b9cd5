import Crypto
import Foundation
import TollgateModel
import _CryptoExtras

/// A compact JWS as received: the signature is checked before any claim is read.
public struct JWT: Sendable {
    public let header: JSONValue
    public let claims: JSONValue
    let signingInput: Data
    let signature: Data

    public var algorithm: String? { header["alg"]?.stringValue }
    public var keyID: String? { header["kid"]?.stringValue }

    /// Splits and decodes a token.
    /// - Throws: `UNAUTHENTICATED` for anything malformed, a `typ` other than `JWT`, or
    ///   any `crit` header: it names extensions the verifier must understand, and this one
    ///   understands none (RFC 7515 §4.1.11).
    public init(_ token: String) throws {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Base64URL.decode(parts[0]), let claimsData = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else { throw TollgateError(.unauthenticated, "malformed token") }
        guard let header = try? JSONValue.parse(headerData), header.objectValue != nil,
            let claims = try? JSONValue.parse(claimsData), claims.objectValue != nil
        else { throw TollgateError(.unauthenticated, "malformed token") }
        if let type = header["typ"] {
            guard type.stringValue?.uppercased() == "JWT" else { throw TollgateError(.unauthenticated, "token typ is not JWT") }
        }
        guard header["crit"] == nil else { throw TollgateError(.unauthenticated, "token has critical header extensions") }
        self.header = header
        self.claims = claims
        self.signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        self.signature = signature
    }

    /// Verifies the RSA PKCS#1 v1.5 signature with `key`, for RS256, RS384 or RS512 only.
    /// - Throws: `UNAUTHENTICATED` for any other algorithm (`none`, HMAC …) or a bad signature.
    public func verifySignature(with key: RSAPublicKey, allowed: Set<String>) throws {
        guard let algorithm, allowed.contains(algorithm) else {
            throw TollgateError(.unauthenticated, "token algorithm \(self.algorithm ?? "missing") is not allowed")
        }
        let signature = _RSA.Signing.RSASignature(rawRepresentation: self.signature)
        let valid: Bool
        switch algorithm {
        case "RS256": valid = key.key.isValidSignature(signature, for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5)
        case "RS384": valid = key.key.isValidSignature(signature, for: SHA384.hash(data: signingInput), padding: .insecurePKCS1v1_5)
        case "RS512": valid = key.key.isValidSignature(signature, for: SHA512.hash(data: signingInput), padding: .insecurePKCS1v1_5)
        default: valid = false
        }
        guard valid else { throw TollgateError(.unauthenticated, "token signature does not verify") }
    }

    /// Checks `exp`, `nbf` and `iat` against `now` with `skew` seconds of leeway (0…3600).
    /// Each must be a whole number of seconds within ``Timestamp/unixSecondsRange`` (years
    /// 1…9999): a signed `exp` of 2⁶³−1 is refused, not added to.
    public func verifyTimes(now: Timestamp, skew: Int64) throws {
        let seconds = now.secondsSinceEpoch
        let skew = min(max(skew, 0), 3_600)
        func time(_ claim: String) throws -> Int64? {
            guard let value = claims[claim] else { return nil }
            guard let number = value.integerValue, Timestamp.unixSecondsRange.contains(number) else {
                throw TollgateError(.unauthenticated, "token \(claim) is not a time within years 1 to 9999")
            }
            return number
        }
        guard let exp = try time("exp") else { throw TollgateError(.unauthenticated, "token has no exp") }
        guard seconds < exp + skew else { throw TollgateError(.unauthenticated, "token expired") }
        if let nbf = try time("nbf"), seconds + skew < nbf {
            throw TollgateError(.unauthenticated, "token not valid yet")
        }
        if let iat = try time("iat"), seconds + skew < iat {
            throw TollgateError(.unauthenticated, "token issued in the future")
        }
    }
}

/// An RSA public key for verifying JWTs.
public struct RSAPublicKey: @unchecked Sendable {
    // _RSA.Signing.PublicKey is an immutable wrapper around a BoringSSL key.
    let key: _RSA.Signing.PublicKey

    /// From a JWK's base64url `n` and `e`.
    public init(n: String, e: String) throws {
        guard let modulus = Base64URL.decode(Substring(n)), let exponent = Base64URL.decode(Substring(e)) else {
            throw TollgateError(.invalidArgument, "JWK n or e is not base64url")
        }
        do {
            key = try _RSA.Signing.PublicKey(n: modulus, e: exponent)
        } catch {
            throw TollgateError(.invalidArgument, "JWK is not a usable RSA key: \(error)")
        }
    }

    /// From a PEM `PUBLIC KEY`.
    public init(pem: String) throws {
        do {
            key = try _RSA.Signing.PublicKey(pemRepresentation: pem)
        } catch {
            throw TollgateError(.invalidArgument, "not an RSA public key PEM: \(error)")
        }
    }

    public init(_ key: _RSA.Signing.PublicKey) { self.key = key }
}

/// Base64url without padding, as JOSE uses it.
public enum Base64URL {
    public static func decode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") || text.isEmpty else { return nil }
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }

    public static func encode(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
