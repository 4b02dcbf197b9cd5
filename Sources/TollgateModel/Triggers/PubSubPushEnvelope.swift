import Foundation

/// The body of a Pub/Sub push delivery.
/// <https://cloud.google.com/pubsub/docs/push#receive_push>
///
/// `{"message": {"data", "attributes", "messageId", "publishTime", "orderingKey"},
/// "subscription": "projects/P/subscriptions/S", "deliveryAttempt": N}`
public struct PubSubPushEnvelope: Codable, Sendable, Hashable {
    public var message: PubSubMessage
    public var subscription: String
    /// Present only when the subscription has a dead-letter policy.
    public var deliveryAttempt: Int?

    public init(message: PubSubMessage, subscription: String, deliveryAttempt: Int?) {
        self.message = message
        self.subscription = subscription
        self.deliveryAttempt = deliveryAttempt
    }
}

/// A Pub/Sub message as pushed: data is base64 on the wire, decoded here.
/// <https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage>
public struct PubSubMessage: Codable, Sendable, Hashable {
    public var data: Data
    public var attributes: [String: String]
    public var messageId: String
    public var publishTime: Timestamp
    public var orderingKey: String?

    public init(data: Data, attributes: [String: String], messageId: String, publishTime: Timestamp, orderingKey: String?) {
        self.data = data
        self.attributes = attributes
        self.messageId = messageId
        self.publishTime = publishTime
        self.orderingKey = orderingKey
    }

    enum CodingKeys: String, CodingKey {
        case data, attributes, messageId, publishTime, orderingKey
        // Older push payloads carry both spellings; `message_id` is the legacy one.
        case legacyMessageId = "message_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let base64 = try c.decodeIfPresent(String.self, forKey: .data) ?? ""
        guard let data = Data(base64Encoded: base64) else {
            throw DecodingError.dataCorruptedError(forKey: .data, in: c, debugDescription: "message.data is not base64")
        }
        self.data = data
        attributes = try c.decodeIfPresent([String: String].self, forKey: .attributes) ?? [:]
        guard let id = try c.decodeIfPresent(String.self, forKey: .messageId) ?? c.decodeIfPresent(String.self, forKey: .legacyMessageId),
            !id.isEmpty
        else {
            throw DecodingError.keyNotFound(
                CodingKeys.messageId, .init(codingPath: c.codingPath, debugDescription: "message.messageId is missing"))
        }
        messageId = id
        let time = try c.decode(String.self, forKey: .publishTime)
        guard let publishTime = Timestamp(rfc3339: time) else {
            throw DecodingError.dataCorruptedError(forKey: .publishTime, in: c, debugDescription: "publishTime is not RFC 3339")
        }
        self.publishTime = publishTime
        let key = try c.decodeIfPresent(String.self, forKey: .orderingKey)
        orderingKey = key?.isEmpty == true ? nil : key
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(data.base64EncodedString(), forKey: .data)
        if !attributes.isEmpty { try c.encode(attributes, forKey: .attributes) }
        try c.encode(messageId, forKey: .messageId)
        try c.encode(publishTime.rfc3339, forKey: .publishTime)
        try c.encodeIfPresent(orderingKey, forKey: .orderingKey)
    }
}
