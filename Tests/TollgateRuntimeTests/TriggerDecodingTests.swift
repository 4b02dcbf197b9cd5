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
