import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@Suite struct TriggerPayloadTests {
    @Test func pubSubEnvelope_decodesGooglesDocumentedShape() throws {
        // The push body from Google's documentation, byte for byte in structure.
        let body = """
            {"message": {"attributes": {"key": "value"}, "data": "SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==",
             "messageId": "2070443601311540", "message_id": "2070443601311540", "publishTime": "2021-02-26T19:13:55.749Z",
             "publish_time": "2021-02-26T19:13:55.749Z"}, "subscription": "projects/myproject/subscriptions/mysubscription"}
            """
        let envelope = try JSONDecoder().decode(PubSubPushEnvelope.self, from: Data(body.utf8))
        #expect(String(decoding: envelope.message.data, as: UTF8.self) == "Hello Cloud Pub/Sub! Here is my message!")
        #expect(envelope.message.attributes == ["key": "value"])
        #expect(envelope.message.publishTime.rfc3339 == "2021-02-26T19:13:55.749000Z")
        #expect(envelope.deliveryAttempt == nil, "deliveryAttempt appears only with a dead-letter policy")
    }
}
