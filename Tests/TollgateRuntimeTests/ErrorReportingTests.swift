import Foundation
import Testing
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

/// A bug (500) and a dead letter are each one log line Cloud Error Reporting reads as an
/// error event (`@type` ReportedErrorEvent, the service, where the error was thrown); a
/// retry asked for (503, 429) is not. The event's fields are checked against the
/// `clouderrorreporting` v1beta1 discovery document.
@Suite struct ErrorReportingTests {
    /// The log line of one delivery that failed with `failure`.
    static func line(failing failure: TollgateError, body: String = pushBody) async throws -> (JSONValue, Int) {
        let fixture = try HostFixture(RecordingPubSubFunction(failure: failure))
        let response = try await fixture.post(body)
        let lines = fixture.sink.captured
        try #require(lines.count == 1)
        return (try JSONValue.parse(Data(lines[0].utf8)), response.status)
    }

    /// The fields of a log line Error Reporting takes as the event (the rest are Cloud
    /// Logging's), checked against the API's own schema.
    static func eventProblems(_ line: JSONValue) throws -> [String] {
        let document = try DiscoveryDocument.load("clouderrorreporting.v1beta1")
        var event: [String: JSONValue] = [:]
        for field in ["message", "serviceContext", "context", "eventTime"] { event[field] = line[field] }
        return document.check(.object(event), against: .object(["$ref": .string("ReportedErrorEvent")]), at: "event")
    }

    @Test(Peer.discoveryDocuments.trait)
    func aBug_isOneErrorEvent_pointingWhereItWasThrown() async throws {
        let thrown = TollgateError(.internal, "the ledger disagrees with itself")
        let (line, status) = try await Self.line(failing: thrown)
        #expect(status == 500)
        #expect(line["severity"] == .string("ERROR"))
        #expect(line["@type"] == .string(ReportedErrorEvent.type))
        #expect(line["serviceContext"]?["service"] == .string("recorder"))
        let location = try #require(line["context"]?["reportLocation"])
        #expect(location["filePath"] == .string(thrown.file) && thrown.file.hasSuffix("ErrorReportingTests.swift"))
        #expect(location["lineNumber"] == .integer(Int64(thrown.line)))
        #expect(location["functionName"] == .string(thrown.function))
        #expect(line["context"]?["httpRequest"]?["responseStatusCode"] == .integer(500))
        let message = try #require(line["message"]?.stringValue)
        #expect(message.contains("the ledger disagrees with itself") && message.contains("ErrorReportingTests.swift:\(thrown.line)"))
        let problems = try Self.eventProblems(line)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test(Peer.discoveryDocuments.trait)
    func aDeadLetter_isAnErrorEvent_andStillAcknowledged() async throws {
        let (line, status) = try await Self.line(failing: TollgateError(.invalidArgument, "units is not a whole number"))
        #expect(status == 200, "Pub/Sub is acknowledged: the letter keeps the message")
        #expect(line["@type"] == .string(ReportedErrorEvent.type))
        #expect(line["deadLetter"]?.stringValue?.hasPrefix("recorder-") == true)
        #expect(line["message"]?.stringValue?.contains("dead-lettered: units is not a whole number") == true)
        #expect(try Self.eventProblems(line).isEmpty)
    }

    @Test(arguments: [TollgateError.Code.unavailable, .aborted, .deadlineExceeded, .resourceExhausted])
    func aRetryAskedFor_isCountedNotReported(code: TollgateError.Code) async throws {
        let (line, status) = try await Self.line(failing: TollgateError(code, "try again"))
        #expect([503, 429].contains(status))
        #expect(line["@type"] == nil && line["context"] == nil)
    }

    @Test func theServiceAndRevision_areCloudRunsNames() {
        let event = ReportedErrorEvent(
            serviceContext: .init(service: "usage-recorder", version: "usage-recorder-00042-xyz"),
            location: .init(filePath: "UsageRecorder/UsageRecorderFunction.swift", lineNumber: 12, functionName: "handle(_:context:)"),
            method: "POST", status: 500)
        guard case .dictionary(let service) = event.metadata["serviceContext"] else {
            Issue.record("no serviceContext")
            return
        }
        #expect(service["service"] == .string("usage-recorder") && service["version"] == .string("usage-recorder-00042-xyz"))
    }
}
