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
