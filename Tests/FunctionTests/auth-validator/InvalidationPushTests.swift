import AuthValidator
import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct InvalidationPushTests {
    func host() throws -> (FunctionHost<AuthValidatorFunction>, HostFixture<RecordingPubSubFunction>) {
        let fixture = try HostFixture(RecordingPubSubFunction())
        let verifier = OIDCVerifier(
            issuers: OIDCVerifier.googleIssuers, audiences: [HostFixture<RecordingPubSubFunction>.audience],
            allowedEmails: ["pubsub-push@tollgate-prod.iam.gserviceaccount.com"], keys: sharedIssuer.keys,
            clock: FixedClock(time: fixture.now))
        let configuration = AuthValidatorFunction.Configuration(keys: try APIKeys(pepper: String(repeating: "p", count: 32)), clerk: nil)
        let handler = AuthValidatorFunction(
            configuration: configuration, store: fixture.store, clock: FixedClock(time: fixture.now), invalidationVerifier: verifier)
        let host = FunctionHost(
            handler: handler, store: fixture.store, clock: FixedClock(time: fixture.now), verifier: nil, logger: capturingLogger().0)
        return (host, fixture)
    }

    func push(_ host: FunctionHost<AuthValidatorFunction>, data: String, token: String?) async -> Int {
        let envelope =
            #"{"message":{"data":"\#(Data(data.utf8).base64EncodedString())","messageId":"1","publishTime":"2026-01-01T00:00:00Z"},"subscription":"s"}"#
        let headers = token.map { [(name: "Authorization", value: "Bearer \($0)")] } ?? []
        return await host.handle(
            FunctionRequest(method: "POST", path: AuthValidatorFunction.invalidationPath, headers: headers, body: Data(envelope.utf8))
        ).status
    }

    @Test func push_isAuthenticated_andUnreadableMessagesAreAcknowledged() async throws {
        let (host, fixture) = try host()
        #expect(await push(host, data: #"{"accountId":"acct_1"}"#, token: nil) == 401)
        #expect(await push(host, data: #"{"accountId":"acct_1"}"#, token: try fixture.token()) == 204)
        #expect(await push(host, data: "not json", token: try fixture.token()) == 204, "a nack would only redeliver it")
        #expect(try await fixture.deadLetters().isEmpty)
    }
}
