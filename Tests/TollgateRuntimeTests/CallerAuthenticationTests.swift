import Foundation
import Logging
import Synchronization
import Testing
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@Suite struct CallerAuthenticationTests {
    func status(_ token: String?, issuer: LocalOIDCIssuer = sharedIssuer) async throws -> (Int, RecordingPubSubFunction) {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler, issuer: sharedIssuer)
        let headers = token.map { [(name: "Authorization", value: "Bearer \($0)")] } ?? []
        let response = await fixture.host.handle(FunctionRequest(method: "POST", path: "/", headers: headers, body: Data(pushBody.utf8)))
        return (response.status, handler)
    }

    var fixture: HostFixture<RecordingPubSubFunction> { try! HostFixture(RecordingPubSubFunction()) }

    @Test func googleSignedToken_forThisAudience_isAccepted() async throws {
        let (status, handler) = try await status(try fixture.token())
        #expect(status == 204)
        #expect(handler.received.all.count == 1)
    }

    @Test func bothGoogleIssuerSpellings_areAccepted() async throws {
        #expect(try await status(try fixture.token(issuer: "accounts.google.com")).0 == 204)
    }

    @Test func wrongAudience_isRefusedWith401() async throws {
        #expect(try await status(try fixture.token(audience: "https://other-service.run.app")).0 == 401)
    }

    @Test func wrongIssuer_isRefusedWith401() async throws {
        #expect(try await status(try fixture.token(issuer: "https://evil.example")).0 == 401)
    }

    @Test func expiredToken_isRefusedWith401() async throws {
        #expect(try await status(try fixture.token(issuedAt: fixture.now.adding(seconds: -7_200))).0 == 401)
    }

    @Test func tokenSignedByAnotherKey_isRefusedWith401() async throws {
        let stranger = try LocalOIDCIssuer(keyID: sharedIssuer.keyID)
        let token = try stranger.token(
            audience: HostFixture<RecordingPubSubFunction>.audience, email: "pubsub-push@tollgate-prod.iam.gserviceaccount.com",
            issuer: "https://accounts.google.com", issuedAt: fixture.now)
        #expect(try await status(token).0 == 401)
    }

    @Test func unverifiedEmail_isRefusedWith401() async throws {
        #expect(try await status(try fixture.token(verified: false)).0 == 401)
    }

    @Test func callerNotAnAllowedInvoker_isRefusedWith403() async throws {
        let (status, handler) = try await status(try fixture.token(email: "someone@else.iam.gserviceaccount.com"))
        #expect(status == 403)
        #expect(handler.received.all.isEmpty)
    }

    @Test func missingToken_isRefusedWith401_andNothingIsWritten() async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let response = await fixture.host.handle(FunctionRequest(method: "POST", path: "/", headers: [], body: Data("garbage".utf8)))
        #expect(response.status == 401)
        #expect(try await fixture.deadLetters().isEmpty, "an unauthenticated caller never fills the dead letters")
    }

    @Test(arguments: ["none", "HS256"])
    func tokensWithAlgorithmsOtherThanRS256_areRefused(algorithm: String) async throws {
        let header = Base64URL.encode(Data(#"{"alg":"\#(algorithm)","typ":"JWT","kid":"\#(sharedIssuer.keyID)"}"#.utf8))
        let good = try fixture.token().split(separator: ".")
        #expect(try await status("\(header).\(good[1]).\(good[2])").0 == 401)
        #expect(try await status("\(header).\(good[1]).").0 == 401)
    }

    @Test func remoteJWKS_refetchesOnUnknownKid_atMostOncePerInterval() async throws {
        let fetches = Mutex(0)
        let document = Data(sharedIssuer.jwksDocument.rendered().utf8)
        let clock = FixedClock(time: Timestamp(secondsSinceEpoch: 1_000))
        let jwks = RemoteJWKS(url: URL(string: "https://example.invalid/certs")!, clock: clock) { _ in
            fetches.withLock { $0 += 1 }
            return document
        }
        _ = try await jwks.key(id: sharedIssuer.keyID)
        _ = try await jwks.key(id: sharedIssuer.keyID)
        #expect(fetches.withLock { $0 } == 1, "cached by kid")
        for _ in 0..<5 { await expectCode(.unauthenticated) { try await jwks.key(id: "made-up") } }
        #expect(fetches.withLock { $0 } == 1, "unknown kids inside the refresh interval do not refetch")
    }
}
