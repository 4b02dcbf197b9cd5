import Crypto
import Foundation
import TollgateHTTP
import TollgateJOSE
import TollgateModel
import _CryptoExtras

/// A Google identity: OAuth access tokens for the APIs, ID tokens for calling
/// OIDC-protected services, and signatures for V4 signed URLs.
public protocol GoogleCredentials: Sendable {
    /// A valid access token (cached; refreshed before it expires).
    func accessToken() async throws -> String
    /// An ID token whose `aud` is `audience` (cached per audience).
    func idToken(audience: String) async throws -> String
    /// The service account's email: what Cloud Tasks and Pub/Sub put in the OIDC tokens
    /// they mint, and the signer of V4 signed URLs.
    func serviceAccountEmail() async throws -> String
    /// An RSA-SHA256 (PKCS #1 v1.5) signature by the service account's key.
    func signBlob(_ data: [UInt8]) async throws -> [UInt8]
    /// Forgets cached tokens (after a 401: the token was revoked or expired early).
    func invalidate() async
}

/// Application Default Credentials, resolved as Google's client libraries do: a key file
/// named by `GOOGLE_APPLICATION_CREDENTIALS` when it is set, else the metadata server
/// (Cloud Run, GCE, GKE), at `GCE_METADATA_HOST` when that is set.
public enum ApplicationDefaultCredentials {
    public static func resolve(
        environment: [String: String], transport: any HTTPTransport, clock: any TollgateModel.Clock = SystemClock()
    ) throws -> any GoogleCredentials {
        if let path = environment["GOOGLE_APPLICATION_CREDENTIALS"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TollgateError(.invalidArgument, "GOOGLE_APPLICATION_CREDENTIALS names \(path), which cannot be read")
            }
            return try ServiceAccountCredentials(keyFile: data, transport: transport, clock: clock)
        }
        let host = environment["GCE_METADATA_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "metadata.google.internal"
        return MetadataServerCredentials(host: host, transport: transport, clock: clock)
    }
}

/// Tokens fetched once and shared: concurrent callers of an expired entry wait for one
/// fetch rather than each starting their own, and an entry is refreshed `margin` before
/// it expires (Google's libraries use a few minutes) so no request carries a token that
/// dies in flight.
actor TokenCache {
    struct Token: Sendable {
        var value: String
        var expiry: Timestamp
    }

    private var tokens: [String: Token] = [:]
    private var fetches: [String: Task<Token, any Error>] = [:]
    private let clock: any TollgateModel.Clock
    private let margin: Int64

    init(clock: any TollgateModel.Clock, refreshMarginSeconds: Int64 = 300) {
        self.clock = clock
        self.margin = refreshMarginSeconds
    }

    func token(_ key: String, fetch: @escaping @Sendable () async throws -> Token) async throws -> String {
        if let token = tokens[key], token.expiry.secondsSinceEpoch - margin > clock.now().secondsSinceEpoch { return token.value }
        if let running = fetches[key] { return try await running.value.value }
        let task = Task { try await fetch() }
        fetches[key] = task
        defer { fetches[key] = nil }
        let token = try await task.value
        tokens[key] = token
        return token.value
    }

    func invalidate() {
        tokens.removeAll()
    }
}

/// The metadata server's credentials: the identity of the Cloud Run service's own
/// service account; no key ever leaves Google.
public struct MetadataServerCredentials: GoogleCredentials {
    let base: String
    let transport: any HTTPTransport
    let clock: any TollgateModel.Clock
    let cache: TokenCache

    public init(host: String, transport: any HTTPTransport, clock: any TollgateModel.Clock = SystemClock()) {
        base = (host.hasPrefix("http") ? host : "http://\(host)") + "/computeMetadata/v1/instance/service-accounts/default"
        self.transport = transport
        self.clock = clock
        cache = TokenCache(clock: clock)
    }

    private func get(_ path: String) async throws -> HTTPResponse {
        let response = try await transport.send(
            HTTPRequest(method: "GET", url: base + path, headers: [("Metadata-Flavor", "Google")], timeout: .seconds(10)))
        guard response.status == 200 else {
            throw TollgateError(
                response.status >= 500 ? .unavailable : .unauthenticated,
                "metadata server answered \(response.status) for \(CurlHTTPClient.redacted(path))")
        }
        return response
    }

    public func accessToken() async throws -> String {
        let clock = self.clock
        return try await cache.token("access") {
            let answer = try GoogleAPIClient.parse(try await get("/token").body, service: "metadata")
            guard let token = answer["access_token"]?.stringValue, let lifetime = answer["expires_in"]?.integerValue else {
                throw TollgateError(.unavailable, "metadata server sent a token response without access_token or expires_in")
            }
            return TokenCache.Token(value: token, expiry: clock.now().adding(seconds: lifetime))
        }
    }

    public func idToken(audience: String) async throws -> String {
        try await cache.token("id:" + audience) {
            let path = "/identity?audience=\(PercentEncoding.unreserved(audience))&format=full"
            return try IDTokens.parse(String(decoding: try await get(path).body, as: UTF8.self))
        }
    }

    public func serviceAccountEmail() async throws -> String {
        String(decoding: try await get("/email").body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The metadata server holds no key to sign with: the IAM Credentials API signs for
    /// the service account (it needs `roles/iam.serviceAccountTokenCreator` on itself).
    public func signBlob(_ data: [UInt8]) async throws -> [UInt8] {
        let email = try await serviceAccountEmail()
        let iam = GoogleAPIClient(
            service: "iamcredentials", endpoint: GoogleEndpoint(baseURL: "https://iamcredentials.googleapis.com", credentials: self),
            transport: transport)
        let answer = try await iam.json(
            "POST", "/v1/projects/-/serviceAccounts/\(PercentEncoding.unreserved(email)):signBlob",
            body: .object(["payload": .string(Data(data).base64EncodedString())]), idempotent: true)
        guard let signed = answer["signedBlob"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else {
            throw TollgateError(.unavailable, "signBlob answered without signedBlob")
        }
        return Array(signed)
    }

    public func invalidate() async { await cache.invalidate() }
}

/// A service-account key file: a self-signed RS256 JWT assertion is exchanged at the
/// key's token endpoint (RFC 7523) for an access token, or for an ID token when the
/// assertion carries `target_audience` instead of `scope`.
public struct ServiceAccountCredentials: GoogleCredentials, @unchecked Sendable {
    // _RSA.Signing.PrivateKey is an immutable wrapper around a BoringSSL key.
    public let email: String
    public let keyID: String
    public let tokenURI: String
    let privateKey: _RSA.Signing.PrivateKey
    let transport: any HTTPTransport
    let clock: any TollgateModel.Clock
    let cache: TokenCache

    public static let scope = "https://www.googleapis.com/auth/cloud-platform"

    /// - Throws: `INVALID_ARGUMENT` for a file that is not a service-account key.
    public init(keyFile: Data, transport: any HTTPTransport, clock: any TollgateModel.Clock = SystemClock()) throws {
        guard let key = try? JSONValue.parse(keyFile), key["type"]?.stringValue == "service_account",
            let email = key["client_email"]?.stringValue, let pem = key["private_key"]?.stringValue
        else {
            throw TollgateError(.invalidArgument, "the credentials file is not a service-account key (type service_account)")
        }
        do { privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw TollgateError(.invalidArgument, "the service-account key's private_key is not an RSA key in PEM")
        }
        self.email = email
        keyID = key["private_key_id"]?.stringValue ?? ""
        tokenURI = key["token_uri"]?.stringValue ?? "https://oauth2.googleapis.com/token"
        self.transport = transport
        self.clock = clock
        cache = TokenCache(clock: clock)
    }

    /// The signed assertion: `extra` holds `scope` or `target_audience`.
    func assertion(_ extra: [String: JSONValue]) throws -> String {
        let now = clock.now().secondsSinceEpoch
        var claims: [String: JSONValue] = [
            "iss": .string(email), "aud": .string(tokenURI), "iat": .integer(now), "exp": .integer(now + 3_600),
        ]
        claims.merge(extra) { _, new in new }
        let header: JSONValue = .object(["alg": .string("RS256"), "typ": .string("JWT"), "kid": .string(keyID)])
        let input = Base64URL.encode(Data(header.rendered().utf8)) + "." + Base64URL.encode(Data(JSONValue.object(claims).rendered().utf8))
        let signature = try privateKey.signature(for: SHA256.hash(data: Data(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    private func exchange(_ extra: [String: JSONValue]) async throws -> JSONValue {
        let form =
            "grant_type=\(PercentEncoding.unreserved("urn:ietf:params:oauth:grant-type:jwt-bearer"))&assertion=\(try assertion(extra))"
        let response = try await transport.send(
            HTTPRequest(
                method: "POST", url: tokenURI, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8),
                timeout: .seconds(30)))
        guard response.status == 200 else {
            // The body says why (invalid_grant: a deleted key, a skewed clock); it holds no secret.
            let reason = (try? JSONValue.parse(Data(response.body)))?["error_description"]?.stringValue ?? "status \(response.status)"
            throw TollgateError(response.status >= 500 ? .unavailable : .unauthenticated, "token endpoint refused the key: \(reason)")
        }
        return try GoogleAPIClient.parse(response.body, service: "oauth2")
    }

    public func accessToken() async throws -> String {
        let clock = self.clock
        return try await cache.token("access") {
            let answer = try await exchange(["scope": .string(Self.scope)])
            guard let token = answer["access_token"]?.stringValue, let lifetime = answer["expires_in"]?.integerValue else {
                throw TollgateError(.unavailable, "token endpoint answered without access_token or expires_in")
            }
            return TokenCache.Token(value: token, expiry: clock.now().adding(seconds: lifetime))
        }
    }

    public func idToken(audience: String) async throws -> String {
        try await cache.token("id:" + audience) {
            let answer = try await exchange(["target_audience": .string(audience)])
            guard let token = answer["id_token"]?.stringValue else {
                throw TollgateError(.unavailable, "token endpoint answered without id_token")
            }
            return try IDTokens.parse(token)
        }
    }

    public func serviceAccountEmail() async throws -> String { email }

    public func signBlob(_ data: [UInt8]) async throws -> [UInt8] {
        Array(try privateKey.signature(for: SHA256.hash(data: data), padding: .insecurePKCS1v1_5).rawRepresentation)
    }

    public func invalidate() async { await cache.invalidate() }
}

enum IDTokens {
    /// An ID token and its expiry, read from its `exp` claim (the token is Google's; its
    /// signature is for the receiver to check).
    static func parse(_ token: String) throws -> TokenCache.Token {
        guard let jwt = try? JWT(token), let exp = jwt.claims["exp"]?.integerValue else {
            throw TollgateError(.unavailable, "the ID token is not a JWT with an exp claim")
        }
        return TokenCache.Token(value: token, expiry: Timestamp(secondsSinceEpoch: exp))
    }
}
