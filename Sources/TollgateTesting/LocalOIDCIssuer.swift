import Crypto
import Foundation
import TollgateJOSE
import TollgateModel
import _CryptoExtras

/// The emulator's stand-in for Google's token service: it signs ID tokens with its own
/// RSA key and publishes the matching JWKS, so the runtime's real OIDC check runs
/// locally too, never bypassed.
public struct LocalOIDCIssuer: @unchecked Sendable {
    // _RSA.Signing.PrivateKey is an immutable wrapper around a BoringSSL key.
    public static let issuer = "https://oidc.tollgate.local"
    public static let serviceAccount = "tollgate-invoker@tollgate-local.iam.gserviceaccount.com"

    private let privateKey: _RSA.Signing.PrivateKey
    public let keyID: String

    public init(keyID: String = "tollgate-local-1") throws {
        privateKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        self.keyID = keyID
    }

    /// The issuer's public keys, as a verifier would fetch them.
    public var keys: StaticJWKS { StaticJWKS(keys: [keyID: RSAPublicKey(privateKey.publicKey)]) }

    /// The JWKS document.
    public var jwksDocument: JSONValue {
        .object(["keys": .array([jwk])])
    }

    private var jwk: JSONValue {
        // The public key's DER is SubjectPublicKeyInfo; pull n and e out of it.
        let der = [UInt8](privateKey.publicKey.pkcs1DERRepresentation)
        let (n, e) = Self.modulusAndExponent(pkcs1: der)
        return .object([
            "kty": .string("RSA"), "kid": .string(keyID), "use": .string("sig"), "alg": .string("RS256"),
            "n": .string(Base64URL.encode(n)), "e": .string(Base64URL.encode(e)),
        ])
    }

    /// An ID token as Google's metadata server mints it for a service account.
    public func token(
        audience: String, email: String = serviceAccount, emailVerified: Bool = true, issuer: String = issuer,
        issuedAt: Timestamp, lifetime: Int64 = 3_600, algorithm: String = "RS256", keyID: String? = nil
    ) throws -> String {
        let header: JSONValue = .object(["alg": .string(algorithm), "typ": .string("JWT"), "kid": .string(keyID ?? self.keyID)])
        let claims: JSONValue = .object([
            "iss": .string(issuer), "aud": .string(audience), "azp": .string(Self.numericID(email)),
            "sub": .string(Self.numericID(email)), "email": .string(email),
            "email_verified": .bool(emailVerified), "iat": .integer(issuedAt.secondsSinceEpoch),
            "exp": .integer(issuedAt.secondsSinceEpoch + lifetime),
        ])
        return try sign(header: header, claims: claims)
    }

    /// Signs any header and claims with the issuer's key (RS256, RS384 or RS512 by the
    /// header's `alg`, RS256 otherwise): the emulator's stand-in for Clerk uses this too.
    public func sign(header: JSONValue, claims: JSONValue) throws -> String {
        let input = Base64URL.encode(Data(header.rendered().utf8)) + "." + Base64URL.encode(Data(claims.rendered().utf8))
        let data = Data(input.utf8)
        let signature: _RSA.Signing.RSASignature
        switch header["alg"]?.stringValue {
        case "RS384": signature = try privateKey.signature(for: SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
        case "RS512": signature = try privateKey.signature(for: SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
        default: signature = try privateKey.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
        }
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// The public key as PEM, for networkless configurations.
    public var publicKeyPEM: String { privateKey.publicKey.pemRepresentation }

    /// A stable numeric id for an account, as Google's `sub` is.
    static func numericID(_ email: String) -> String {
        "1" + SHA256.hash(data: Data(email.utf8)).prefix(8).map { String($0 % 10) }.joined() + "0000000000000"
    }

    /// Reads n and e from a PKCS#1 RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
    static func modulusAndExponent(pkcs1 der: [UInt8]) -> ([UInt8], [UInt8]) {
        var index = 0
        func length() -> Int {
            let first = Int(der[index])
            index += 1
            guard first & 0x80 != 0 else { return first }
            var value = 0
            for _ in 0..<(first & 0x7f) {
                value = value << 8 | Int(der[index])
                index += 1
            }
            return value
        }
        func integer() -> [UInt8] {
            index += 1  // INTEGER tag
            let count = length()
            var bytes = Array(der[index..<index + count])
            index += count
            while bytes.count > 1, bytes[0] == 0 { bytes.removeFirst() }
            return bytes
        }
        index += 1  // SEQUENCE tag
        _ = length()
        let n = integer()
        return (n, integer())
    }
}
