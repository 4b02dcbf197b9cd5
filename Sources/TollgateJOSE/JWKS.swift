import Foundation
import Synchronization
import TollgateHTTP
import TollgateModel

/// Where verification keys come from, by `kid`.
public protocol JWKSource: Sendable {
    /// - Throws: `UNAUTHENTICATED` for an unknown `kid`, `UNAVAILABLE` when the keys
    ///   cannot be fetched.
    func key(id: String?) async throws -> RSAPublicKey
}

/// A fixed key set: the emulator's local issuer, or a configured PEM (networkless).
public struct StaticJWKS: JWKSource {
    let keys: [String: RSAPublicKey]
    let single: RSAPublicKey?

    public init(keys: [String: RSAPublicKey]) {
        self.keys = keys
        single = nil
    }

    /// One configured public key (a PEM, networkless): it verifies every token, whatever
    /// `kid` the token names.
    public init(only key: RSAPublicKey) {
        keys = [:]
        single = key
    }

    public func key(id: String?) async throws -> RSAPublicKey {
        if let single { return single }
        if let id, let key = keys[id] { return key }
        throw TollgateError(.unauthenticated, "unknown signing key \(id ?? "(no kid)")")
    }

    /// Parses a JWKS document (`{"keys": [{"kty": "RSA", "kid", "n", "e"}]}`), keeping the
    /// RSA signing keys.
    public static func parse(_ data: Data) throws -> [String: RSAPublicKey] {
        guard let keys = try JSONValue.parse(data)["keys"]?.arrayValue else {
            throw TollgateError(.invalidArgument, "a JWKS document has a \"keys\" array")
        }
        var result: [String: RSAPublicKey] = [:]
        for jwk in keys where jwk["kty"]?.stringValue == "RSA" && (jwk["use"]?.stringValue ?? "sig") == "sig" {
            guard let kid = jwk["kid"]?.stringValue, let n = jwk["n"]?.stringValue, let e = jwk["e"]?.stringValue else { continue }
            result[kid] = try RSAPublicKey(n: n, e: e)
        }
        return result
    }
}

/// Keys fetched from a JWKS URL (Google's `oauth2/v3/certs`, Clerk's `jwks.json`),
/// cached for `ttl`; an unknown `kid` refetches once, at most every `minRefresh`, so a
/// flood of made-up `kid`s cannot hammer the endpoint.
public final class RemoteJWKS: JWKSource {
    private struct Cache {
        var keys: [String: RSAPublicKey] = [:]
        var fetched: Timestamp?
    }

    public let url: URL
    private let ttl: Int64
    private let minRefresh: Int64
    private let clock: any TollgateModel.Clock
    private let fetch: @Sendable (URL) async throws -> Data
    private let cache = Mutex(Cache())

    public init(
        url: URL, ttl: Int64 = 3_600, minRefresh: Int64 = 30, clock: any TollgateModel.Clock = SystemClock(),
        fetch: @escaping @Sendable (URL) async throws -> Data = RemoteJWKS.download
    ) {
        self.url = url
        self.ttl = ttl
        self.minRefresh = minRefresh
        self.clock = clock
        self.fetch = fetch
    }

    public func key(id: String?) async throws -> RSAPublicKey {
        guard let id else { throw TollgateError(.unauthenticated, "token has no kid") }
        let now = clock.now()
        let (cached, fresh, mayRefresh) = cache.withLock { cache in
            let age = cache.fetched.map { now.secondsSinceEpoch - $0.secondsSinceEpoch }
            return (cache.keys[id], age.map { $0 < ttl } ?? false, age.map { $0 >= minRefresh } ?? true)
        }
        if let cached, fresh { return cached }
        guard cached != nil || mayRefresh else { throw TollgateError(.unauthenticated, "unknown signing key \(id)") }
        let keys = try StaticJWKS.parse(try await fetch(url))
        cache.withLock { $0 = Cache(keys: keys, fetched: now) }
        guard let key = keys[id] else { throw TollgateError(.unauthenticated, "unknown signing key \(id)") }
        return key
    }

    /// One client for every JWKS fetch of the process: its connections are reused.
    static let http = CurlHTTPClient(maxResponseBytes: 1 << 20, maxIdleConnections: 2)

    /// GET over libcurl, with a 5-second timeout.
    @Sendable public static func download(_ url: URL) async throws -> Data {
        if url.isFileURL { return try Data(contentsOf: url) }
        let response = try await http.send(HTTPRequest(method: "GET", url: url.absoluteString, timeout: .seconds(5)))
        guard response.status == 200 else { throw TollgateError(.unavailable, "JWKS \(url) answered \(response.status)") }
        return Data(response.body)
    }
}
