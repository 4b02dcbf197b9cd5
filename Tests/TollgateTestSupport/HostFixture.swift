import Foundation
import Logging
import Testing
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

/// A host around `handler` with a local issuer, a fixed clock and a fresh store.
package struct HostFixture<Handler: FunctionHandler> {
    package let host: FunctionHost<Handler>
    package let issuer: LocalOIDCIssuer
    package let store: SQLiteDocumentStore
    package let sink: LogSink
    package let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    package static var audience: String { "https://recorder-abc123-uc.a.run.app" }

    package init(_ handler: Handler, issuer: LocalOIDCIssuer = sharedIssuer) throws {
        self.issuer = issuer
        let clock = FixedClock(time: Timestamp(secondsSinceEpoch: 1_767_225_600))
        store = SQLiteDocumentStore(try temporaryDatabase(clock: clock))
        let (logger, sink) = capturingLogger()
        self.sink = sink
        let verifier = OIDCVerifier(
            issuers: OIDCVerifier.googleIssuers, audiences: [Self.audience],
            allowedEmails: ["pubsub-push@tollgate-prod.iam.gserviceaccount.com"], keys: issuer.keys, clock: clock)
        host = FunctionHost(handler: handler, store: store, clock: clock, verifier: verifier, logger: logger, maxBodyBytes: 4_096)
    }

    package func token(
        audience: String = audience, email: String = "pubsub-push@tollgate-prod.iam.gserviceaccount.com",
        issuer: String = "https://accounts.google.com", issuedAt: Timestamp? = nil, verified: Bool = true
    ) throws -> String {
        try self.issuer.token(audience: audience, email: email, emailVerified: verified, issuer: issuer, issuedAt: issuedAt ?? now)
    }

    package func post(_ body: String, headers: [(name: String, value: String)] = [], token: String? = nil) async throws -> FunctionResponse
    {
        let auth = try token ?? self.token()
        return await host.handle(
            FunctionRequest(
                method: "POST", path: "/", headers: [(name: "Authorization", value: "Bearer \(auth)")] + headers, body: Data(body.utf8)))
    }

    package func deadLetters() async throws -> [DeadLetter] {
        try await store.query(DocumentQuery(collection: DeadLetter.collection)).map { try $0.decode(DeadLetter.self) }
    }
}

package struct FixedClock: TollgateModel.Clock {
    package let time: Timestamp
    package init(time: Timestamp) { self.time = time }
    package func now() -> Timestamp { time }
}

/// Generating an RSA key takes a moment; the tests share one issuer.
package let sharedIssuer = try! LocalOIDCIssuer()
