import Foundation
import Logging
import Synchronization
import Testing
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

/// A Pub/Sub function for runtime tests: records what it got, or throws what it is told.
struct RecordingPubSubFunction: FunctionHandler {
    typealias Event = PubSubEvent
    let declaration = FunctionDeclaration(
        name: "recorder", trigger: .pubSub(topic: "usage-events", maxDeliveryAttempts: 5, ackDeadlineSeconds: 10))
    let received = Recorder<PubSubEvent>()
    let failure: TollgateError?

    init(failure: TollgateError? = nil) { self.failure = failure }

    func handle(_ event: PubSubEvent, context: FunctionContext) async throws -> FunctionResponse {
        if let failure { throw failure }
        received.append(event)
        return FunctionResponse(status: 204)
    }
}

struct RecordingTaskFunction: FunctionHandler {
    typealias Event = TaskEvent
    let declaration = FunctionDeclaration(
        name: "tasker", trigger: .cloudTasks(queue: "usage-report", retry: TaskRetryConfig(maxAttempts: 5)))
    let received = Recorder<TaskEvent>()
    func handle(_ event: TaskEvent, context: FunctionContext) async throws -> FunctionResponse {
        received.append(event)
        return FunctionResponse(status: 200)
    }
}

struct RecordingSchedulerFunction: FunctionHandler {
    typealias Event = SchedulerEvent
    let declaration = FunctionDeclaration(
        name: "ticker", trigger: .scheduler(job: "quota-reset", schedule: "0 * * * *", timeZone: "Etc/UTC"))
    let received = Recorder<SchedulerEvent>()
    func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        received.append(event)
        return FunctionResponse(status: 200)
    }
}

/// A host around `handler` with a local issuer, a fixed clock and a fresh store.
struct HostFixture<Handler: FunctionHandler> {
    let host: FunctionHost<Handler>
    let issuer: LocalOIDCIssuer
    let store: SQLiteDocumentStore
    let sink: LogSink
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    static var audience: String { "https://recorder-abc123-uc.a.run.app" }

    init(_ handler: Handler, issuer: LocalOIDCIssuer = sharedIssuer) throws {
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

    func token(
        audience: String = audience, email: String = "pubsub-push@tollgate-prod.iam.gserviceaccount.com",
        issuer: String = "https://accounts.google.com", issuedAt: Timestamp? = nil, verified: Bool = true
    ) throws -> String {
        try self.issuer.token(audience: audience, email: email, emailVerified: verified, issuer: issuer, issuedAt: issuedAt ?? now)
    }

    func post(_ body: String, headers: [(name: String, value: String)] = [], token: String? = nil) async throws -> FunctionResponse {
        let auth = try token ?? self.token()
        return await host.handle(
            FunctionRequest(
                method: "POST", path: "/", headers: [(name: "Authorization", value: "Bearer \(auth)")] + headers, body: Data(body.utf8)))
    }

    func deadLetters() async throws -> [DeadLetter] {
        try await store.query(DocumentQuery(collection: DeadLetter.collection)).map { try $0.decode(DeadLetter.self) }
    }
}

struct FixedClock: TollgateModel.Clock {
    let time: Timestamp
    func now() -> Timestamp { time }
}

/// Generating an RSA key takes a moment; the tests share one issuer.
let sharedIssuer = try! LocalOIDCIssuer()

let pushBody = """
    {"message":{"attributes":{"source":"api"},"data":"eyJyZXF1ZXN0SWQiOiJyZXFfMSJ9","messageId":"9876543210","publishTime":"2026-01-01T00:00:00.123Z","orderingKey":"acct_1"},
     "subscription":"projects/tollgate-prod/subscriptions/usage-recorder","deliveryAttempt":3}
    """

@Suite struct TriggerDecodingTests {
    @Test func pubSubPush_envelopeIsDecoded_andAcknowledgedWith204() async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(pushBody, headers: [(name: "Content-Type", value: "application/json")])
        #expect(response.status == 204)
        let event = try #require(handler.received.all.first)
        #expect(String(decoding: event.message.data, as: UTF8.self) == #"{"requestId":"req_1"}"#)
        #expect(event.message.messageId == "9876543210")
        #expect(event.message.orderingKey == "acct_1")
        #expect(event.envelope.deliveryAttempt == 3)
        #expect(event.envelope.subscription == "projects/tollgate-prod/subscriptions/usage-recorder")
    }

    @Test func cloudEventBinaryMode_carriesThePushEnvelopeAsData() async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(
            pushBody,
            headers: [
                (name: "Content-Type", value: "application/json"), (name: "ce-id", value: "9876543210"),
                (name: "ce-source", value: "//pubsub.googleapis.com/projects/tollgate-prod/topics/usage-events"),
                (name: "ce-type", value: "google.cloud.pubsub.topic.v1.messagePublished"), (name: "ce-specversion", value: "1.0"),
                (name: "ce-time", value: "2026-01-01T00:00:00.123Z"),
            ])
        #expect(response.status == 204)
        #expect(handler.received.all.first?.message.messageId == "9876543210")
    }

    @Test func cloudEventStructuredMode_isDecodedFromApplicationCloudeventsJSON() async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let body = """
            {"specversion":"1.0","id":"9876543210","source":"//pubsub.googleapis.com/projects/tollgate-prod/topics/usage-events",
             "type":"google.cloud.pubsub.topic.v1.messagePublished","datacontenttype":"application/json","time":"2026-01-01T00:00:00.123Z",
             "data":\(pushBody)}
            """
        let response = try await fixture.post(body, headers: [(name: "Content-Type", value: "application/cloudevents+json; charset=utf-8")])
        #expect(response.status == 204)
        #expect(handler.received.all.first?.message.attributes == ["source": "api"])
    }

    @Test func cloudEventOfAnotherType_isPoison_deadLetteredAndAcknowledged() async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(
            pushBody,
            headers: [
                (name: "ce-id", value: "1"), (name: "ce-source", value: "//storage.googleapis.com/projects/_/buckets/b"),
                (name: "ce-type", value: "google.cloud.storage.object.v1.finalized"), (name: "ce-specversion", value: "1.0"),
            ])
        #expect(response.status == 200)
        #expect(try await fixture.deadLetters().first?.reason.contains("google.cloud.storage.object.v1.finalized") == true)
    }

    @Test(arguments: [
        ("not json", "malformed JSON"),
        (#"{"message":{"data":"%%%","messageId":"1","publishTime":"2026-01-01T00:00:00Z"},"subscription":"s"}"#, "base64"),
        (#"{"message":{"data":"","publishTime":"2026-01-01T00:00:00Z"},"subscription":"s"}"#, "messageId"),
        (#"{"message":{"data":"","messageId":"1","publishTime":"yesterday"},"subscription":"s"}"#, "RFC 3339"),
        (#"{"subscription":"s"}"#, "message"),
    ])
    func pubSubPoison_isDeadLetteredWithRawBodyAndReason_andAcknowledged(body: String, reason: String) async throws {
        let handler = RecordingPubSubFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(body)
        #expect(response.status == 200, "acknowledged so Pub/Sub does not redeliver it forever")
        let letters = try await fixture.deadLetters()
        #expect(letters.count == 1)
        #expect(letters.first?.body == Data(body.utf8))
        #expect(letters.first?.reason.contains(reason) == true, "reason: \(letters.first?.reason ?? "")")
        #expect(letters.first?.trigger == "pubsub")
        _ = try await fixture.post(body)
        #expect(try await fixture.deadLetters().count == 1, "a redelivery lands on the same dead letter")
        #expect(handler.received.all.isEmpty)
    }

    @Test func cloudTasks_headersAreDecoded() async throws {
        let handler = RecordingTaskFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(
            #"{"accountId":"a1"}"#,
            headers: [
                (name: "X-CloudTasks-QueueName", value: "usage-report"), (name: "X-CloudTasks-TaskName", value: "report-a1-2026-01-01"),
                (name: "X-CloudTasks-TaskRetryCount", value: "2"), (name: "X-CloudTasks-TaskExecutionCount", value: "1"),
                (name: "X-CloudTasks-TaskETA", value: "1767225600.123456"), (name: "X-CloudTasks-TaskPreviousResponse", value: "503"),
                (name: "X-CloudTasks-TaskRetryReason", value: "UNAVAILABLE"),
            ])
        #expect(response.status == 200)
        let task = try #require(handler.received.all.first?.task)
        #expect(
            task
                == CloudTasksRequest(
                    queueName: "usage-report", taskName: "report-a1-2026-01-01", retryCount: 2, executionCount: 1,
                    eta: 1_767_225_600.123456,
                    previousResponse: 503, retryReason: "UNAVAILABLE"))
    }

    @Test func cloudTasks_missingHeaders_isPoison() async throws {
        let handler = RecordingTaskFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post("{}", headers: [(name: "X-CloudTasks-QueueName", value: "usage-report")])
        #expect(response.status == 200)
        #expect(try await fixture.deadLetters().first?.reason.contains("X-CloudTasks-TaskName") == true)
    }

    @Test func cloudScheduler_headersAreDecoded() async throws {
        let handler = RecordingSchedulerFunction()
        let fixture = try HostFixture(handler)
        let response = try await fixture.post(
            "",
            headers: [
                (name: "X-CloudScheduler", value: "true"), (name: "X-CloudScheduler-JobName", value: "quota-reset"),
                (name: "X-CloudScheduler-ScheduleTime", value: "2026-01-01T00:00:00.000Z"),
            ])
        #expect(response.status == 200)
        #expect(
            handler.received.all.first?.run
                == CloudSchedulerRequest(jobName: "quota-reset", scheduleTime: Timestamp(secondsSinceEpoch: 1_767_225_600)))
    }
}

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

@Suite struct OutcomeMappingTests {
    @Test(arguments: [
        (TollgateError.Code.unavailable, 503), (.aborted, 503), (.deadlineExceeded, 503), (.resourceExhausted, 429),
        (.internal, 500), (.notFound, 500),
    ])
    func handlerErrors_mapToStatusesThatMakeTheSenderRetry(code: TollgateError.Code, status: Int) async throws {
        let fixture = try HostFixture(RecordingPubSubFunction(failure: TollgateError(code, "boom")))
        let response = try await fixture.post(pushBody)
        #expect(response.status == status)
        #expect(try await fixture.deadLetters().isEmpty, "transient failures are retried, not dead-lettered")
        if status == 429 { #expect(response.headers["Retry-After"] != nil) }
    }

    @Test func oversizeBody_isRefusedWith413() async throws {
        let fixture = try HostFixture(RecordingPubSubFunction())
        #expect(try await fixture.post(String(repeating: " ", count: 4_097)).status == 413)
    }

    @Test func healthz_answers200_withoutAuthentication() async throws {
        let fixture = try HostFixture(RecordingPubSubFunction())
        #expect(await fixture.host.handle(FunctionRequest(method: "GET", path: "/healthz", headers: [], body: Data())).status == 200)
    }

    @Test func eachDelivery_logsOneStructuredLine_withTraceAndLabels_andNoToken() async throws {
        let fixture = try HostFixture(RecordingPubSubFunction())
        let token = try fixture.token()
        _ = try await fixture.post(
            pushBody, headers: [(name: "traceparent", value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], token: token)
        let lines = fixture.sink.captured
        #expect(lines.count == 1)
        let line = try JSONValue.parse(Data(lines[0].utf8))
        #expect(line["severity"] == .string("INFO"))
        #expect(line["logging.googleapis.com/trace"] == .string("projects/tollgate-test/traces/4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(line["logging.googleapis.com/labels"] == .object(["function": .string("recorder"), "trigger": .string("pubsub")]))
        #expect(line["messageId"] == .string("9876543210"))
        #expect(!lines[0].contains(token.split(separator: ".")[2]), "the bearer token never reaches a log line")
    }

    @Test func cloudTraceContextHeader_isReadToo() {
        #expect(
            traceID(traceparent: nil, cloudTraceContext: "105445aa7843bc8bf206b12000100000/1;o=1") == "105445aa7843bc8bf206b12000100000")
        #expect(traceID(traceparent: "garbage", cloudTraceContext: nil) == nil)
    }
}

@Suite struct ConfigurationTests {
    @Test func internalTrigger_withoutAudience_namesTheMissingSetting() {
        let declaration = RecordingPubSubFunction().declaration
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: Environment([:]), function: declaration) }
        do {
            _ = try RuntimeConfiguration(environment: Environment(["TOLLGATE_INVOKERS": "a@b"]), function: declaration)
        } catch let error as ConfigurationError {
            #expect(error.setting == "TOLLGATE_AUDIENCE")
        } catch { Issue.record("\(error)") }
    }

    @Test func malformedPort_namesTheSetting() {
        let declaration = FunctionDeclaration(name: "x", trigger: .http(authenticated: false, retryingSender: false))
        do {
            _ = try RuntimeConfiguration(environment: Environment(["PORT": "eighty"]), function: declaration)
            Issue.record("accepted a bad PORT")
        } catch let error as ConfigurationError {
            #expect(error.setting == "PORT")
        } catch { Issue.record("\(error)") }
        #expect((try? RuntimeConfiguration(environment: Environment([:]), function: declaration))?.port == 8080)
    }
}

/// What a test handler received, safe to share across tasks.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
}

@Suite struct FunctionRequestTests {
    @Test func headerNames_matchIgnoringASCIICaseOnly() {
        let request = FunctionRequest(
            method: "POST", path: "/", headers: [(name: "x-cloudtasks-queuename", value: "q"), (name: "X-A[", value: "bracket")],
            body: Data())
        #expect(request.header("X-CloudTasks-QueueName") == "q")
        #expect(request.header("X-CLOUDTASKS-QUEUENAME") == "q")
        #expect(request.header("x-a{") == nil, "[ and { differ by the case bit but are not letters")
        #expect(request.header("X-CloudTasks-QueueNam") == nil)
    }
}
