import Crypto
import Foundation
import Testing
import TollgateEmulator
import TollgateGoogle
import TollgateHTTP
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateTestSupport
import _CryptoExtras

/// Application Default Credentials: the metadata server (against a loopback stand-in) and
/// a service-account key (its signed assertion checked claim by claim), token caching and
/// refresh, and V4 signed URLs compared with Google's own library.
@Suite struct GoogleCredentialsTests {
    static let start = Timestamp(secondsSinceEpoch: 1_767_225_600)

    // MARK: Metadata server

    @Test(Peer.pythonVenv.trait) func metadataServer_tokenIsFetchedOnce_underConcurrency_andRefreshedBeforeExpiry() async throws {
        let server = try await MetadataStandIn.start()
        defer { server.stop() }
        let clock = VirtualClock(start: Self.start)
        let credentials = MetadataServerCredentials(host: server.host, transport: CurlHTTPClient(), clock: clock)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await credentials.accessToken() } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(tokens) == ["ya29.stand-in-1"])
        #expect(try await server.counts()["token"] == 1)
        // Still valid with five minutes to spare: cached.
        clock.advance(seconds: 3_599 - 301)
        #expect(try await credentials.accessToken() == "ya29.stand-in-1")
        // Inside the five-minute margin: refreshed, once.
        clock.advance(seconds: 2)
        #expect(try await credentials.accessToken() == "ya29.stand-in-2")
        #expect(try await credentials.accessToken() == "ya29.stand-in-2")
        #expect(try await server.counts()["token"] == 2)
        #expect(try await server.counts()["refused"] == 0)
    }

    @Test(Peer.pythonVenv.trait) func metadataServer_idTokensAreCachedPerAudience_andTheEmailIsRead() async throws {
        let server = try await MetadataStandIn.start()
        defer { server.stop() }
        let credentials = MetadataServerCredentials(host: server.host, transport: CurlHTTPClient(), clock: VirtualClock(start: Self.start))
        let first = try await credentials.idToken(audience: "https://usage-report-abc.a.run.app")
        #expect(try JWT(first).claims["aud"] == .string("https://usage-report-abc.a.run.app"))
        _ = try await credentials.idToken(audience: "https://usage-report-abc.a.run.app")
        _ = try await credentials.idToken(audience: "https://cleanup-abc.a.run.app")
        #expect(try await server.counts()["identity"] == 2)
        #expect(try await credentials.serviceAccountEmail() == "svc@p.iam.gserviceaccount.com")
    }

    @Test(Peer.pythonVenv.trait) func apiClient_sendsTheBearerToken_andOnA401FetchesANewOneOnce() async throws {
        let server = try await MetadataStandIn.start()
        defer { server.stop() }
        let credentials = MetadataServerCredentials(host: server.host, transport: CurlHTTPClient(), clock: VirtualClock(start: Self.start))
        let api = RecordingTransport { _, index in index == 0 ? .googleError(401, "UNAUTHENTICATED", "expired") : .json(.object([:])) }
        var (logger, sink) = capturingLogger()
        logger.logLevel = .debug
        let client = GoogleAPIClient(
            service: "firestore", endpoint: GoogleEndpoint(baseURL: "https://firestore.googleapis.com", credentials: credentials),
            transport: api, logger: logger)
        _ = try await client.json(
            "POST", "/v1/projects/p/databases/d/documents:commit?upload_id=secret-session", body: .object([:]), idempotent: false)
        // One debug line per exchange, naming the call; never a token or a query.
        #expect(sink.captured.count == 2)
        #expect(sink.captured.allSatisfy { $0.contains("documents:commit") && !$0.contains("ya29") && !$0.contains("secret-session") })
        let authorizations = api.requests.map { request in request.headers.first { $0.name == "Authorization" }?.value }
        #expect(authorizations == ["Bearer ya29.stand-in-1", "Bearer ya29.stand-in-2"])
        // A second 401 is an answer, not a loop.
        let refusing = RecordingTransport { _, _ in .googleError(401, "UNAUTHENTICATED", "no") }
        let stubborn = GoogleAPIClient(
            service: "firestore", endpoint: GoogleEndpoint(baseURL: "https://firestore.googleapis.com", credentials: credentials),
            transport: refusing)
        await expectCode(.unauthenticated) { try await stubborn.json("GET", "/v1/x", idempotent: true) }
        #expect(refusing.requests.count == 2)
    }

    @Test func metadataServer_signsBlobsThroughTheIAMCredentialsAPI() async throws {
        let signed: [UInt8] = [1, 2, 3, 250]
        let transport = RecordingTransport { request, _ in
            if request.url.hasSuffix("/email") { return HTTPResponse(status: 200, body: Array("svc@p.iam.gserviceaccount.com".utf8)) }
            if request.url.hasSuffix("/token") {
                return .json(.object(["access_token": .string("ya29.iam"), "expires_in": .integer(3_599)]))
            }
            return .json(.object(["keyId": .string("k1"), "signedBlob": .string(Data(signed).base64EncodedString())]))
        }
        let credentials = MetadataServerCredentials(host: "metadata.test", transport: transport, clock: VirtualClock(start: Self.start))
        #expect(try await credentials.signBlob(Array("string to sign".utf8)) == signed)
        let call = try #require(transport.requests.last)
        #expect(call.url == "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/svc%40p.iam.gserviceaccount.com:signBlob")
        #expect(call.json?["payload"] == .string(Data("string to sign".utf8).base64EncodedString()))
        #expect(call.headers.contains { $0.name == "Authorization" && $0.value == "Bearer ya29.iam" })
    }

    // MARK: Service-account key

    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    static func keyFile(tokenURI: String = "https://oauth2.googleapis.com/token") -> JSONValue {
        .object([
            "type": .string("service_account"), "project_id": .string("tollgate-test"), "private_key_id": .string("0123abcd"),
            "private_key": .string(key.pemRepresentation), "client_email": .string("exporter@tollgate-test.iam.gserviceaccount.com"),
            "client_id": .string("1"), "token_uri": .string(tokenURI),
        ])
    }

    @Test func serviceAccountKey_assertionIsAnRS256JWT_withTheClaimsGoogleRequires() async throws {
        let clock = VirtualClock(start: Self.start)
        let tokenEndpoint = RecordingTransport { request, _ in
            let form = String(decoding: request.body, as: UTF8.self)
            return form.contains("target_audience") || Self.assertion(in: request)?.claims["target_audience"] != nil
                ? .json(.object(["id_token": .string(Self.unsignedJWT(exp: 1_767_229_200))]))
                : .json(
                    .object(["access_token": .string("ya29.key-flow"), "expires_in": .integer(3_599), "token_type": .string("Bearer")]))
        }
        let credentials = try ServiceAccountCredentials(
            keyFile: Data(Self.keyFile().rendered().utf8), transport: tokenEndpoint, clock: clock)
        #expect(try await credentials.accessToken() == "ya29.key-flow")
        #expect(try await credentials.accessToken() == "ya29.key-flow")
        #expect(tokenEndpoint.requests.count == 1)
        let request = tokenEndpoint.requests[0]
        #expect(request.method == "POST" && request.url == "https://oauth2.googleapis.com/token")
        #expect(request.headers.contains { $0.name == "Content-Type" && $0.value == "application/x-www-form-urlencoded" })
        #expect(
            String(decoding: request.body, as: UTF8.self).hasPrefix(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="))
        let jwt = try #require(Self.assertion(in: request))
        #expect(jwt.header == .object(["alg": .string("RS256"), "typ": .string("JWT"), "kid": .string("0123abcd")]))
        #expect(jwt.claims["iss"] == .string("exporter@tollgate-test.iam.gserviceaccount.com"))
        #expect(jwt.claims["aud"] == .string("https://oauth2.googleapis.com/token"))
        #expect(jwt.claims["scope"] == .string("https://www.googleapis.com/auth/cloud-platform"))
        #expect(jwt.claims["iat"] == .integer(Self.start.secondsSinceEpoch))
        #expect(jwt.claims["exp"] == .integer(Self.start.secondsSinceEpoch + 3_600))
        // The signature verifies with the key's public half.
        try jwt.verifySignature(with: RSAPublicKey(pem: Self.key.publicKey.pemRepresentation), allowed: ["RS256"])
        // An ID token: the same assertion with target_audience in place of scope.
        _ = try await credentials.idToken(audience: "https://usage-report-abc.a.run.app")
        let idAssertion = try #require(Self.assertion(in: tokenEndpoint.requests[1]))
        #expect(idAssertion.claims["target_audience"] == .string("https://usage-report-abc.a.run.app"))
        #expect(idAssertion.claims["scope"] == nil)
    }

    @Test func applicationDefaultCredentials_preferTheKeyFile_thenTheMetadataServer() throws {
        let file = scratchURL("key", extension: "json")
        try Data(Self.keyFile().rendered().utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let transport = CurlHTTPClient()
        #expect(
            try ApplicationDefaultCredentials.resolve(environment: ["GOOGLE_APPLICATION_CREDENTIALS": file.path], transport: transport)
                is ServiceAccountCredentials)
        #expect(try ApplicationDefaultCredentials.resolve(environment: [:], transport: transport) is MetadataServerCredentials)
        #expect(throws: TollgateError.self) {
            try ApplicationDefaultCredentials.resolve(
                environment: ["GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json"], transport: transport)
        }
        let userCredentials = scratchURL("user", extension: "json")
        try Data(#"{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}"#.utf8).write(to: userCredentials)
        defer { try? FileManager.default.removeItem(at: userCredentials) }
        #expect(throws: TollgateError.self) {
            try ApplicationDefaultCredentials.resolve(
                environment: ["GOOGLE_APPLICATION_CREDENTIALS": userCredentials.path], transport: transport)
        }
    }

    // MARK: V4 signed URLs

    @Test(Peer.pythonVenv.trait) func signedURL_isByteForByteWhatGooglesLibrarySigns() async throws {
        let credentials = try ServiceAccountCredentials(keyFile: Data(Self.keyFile().rendered().utf8), transport: CurlHTTPClient())
        let builder = SignedURLBuilder(credentials: credentials)
        let now = Timestamp(secondsSinceEpoch: 1_767_268_805)  // 2026-01-01T12:00:05Z
        for object in ["usage/2026/01/01/part-00000.ndjson.gz", "exports/a b+c/é~.json"] {
            let ours = try await builder.url(bucket: "tollgate-exports", object: object, expiresInSeconds: 3_600, now: now)
            let theirs = try await PythonPeer.run(
                script: "gcs_signed_url.py",
                input: .object([
                    "key": Self.keyFile(), "bucket": .string("tollgate-exports"), "object": .string(object), "expiration": .integer(3_600),
                    "timestamp": .string("20260101T120005Z"),
                ]))
            #expect(ours == theirs["url"]?.stringValue)
        }
        await expectCode(.invalidArgument) {
            try await builder.url(bucket: "b", object: "o", expiresInSeconds: SignedURLBuilder.maxExpirySeconds + 1, now: now)
        }
    }

    // MARK: Helpers

    static func assertion(in request: HTTPRequest) -> JWT? {
        let form = String(decoding: request.body, as: UTF8.self)
        guard let range = form.range(of: "assertion=") else { return nil }
        return try? JWT(String(form[range.upperBound...].prefix { $0 != "&" }))
    }

    static func unsignedJWT(exp: Int64) -> String {
        Base64URL.encode(Data(#"{"alg":"RS256"}"#.utf8)) + "." + Base64URL.encode(Data(#"{"exp":\#(exp)}"#.utf8)) + ".c2ln"
    }
}
