import Foundation

/// A CloudEvent (spec 1.0) as Eventarc delivers it over HTTP, in binary mode (`ce-*`
/// headers, the data as the body) or structured mode (`application/cloudevents+json`).
/// <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md>
public struct CloudEvent: Sendable, Hashable {
    public var id: String
    public var source: String
    public var type: String
    public var specVersion: String
    public var subject: String?
    public var time: Timestamp?
    public var dataContentType: String?
    public var data: Data

    public init(
        id: String, source: String, type: String, specVersion: String = "1.0", subject: String? = nil,
        time: Timestamp? = nil, dataContentType: String? = nil, data: Data
    ) {
        self.id = id
        self.source = source
        self.type = type
        self.specVersion = specVersion
        self.subject = subject
        self.time = time
        self.dataContentType = dataContentType
        self.data = data
    }

    /// The Eventarc type of a Pub/Sub message.
    public static let pubSubMessagePublished = "google.cloud.pubsub.topic.v1.messagePublished"

    /// Decodes binary mode: the required `ce-id`, `ce-source`, `ce-type`, `ce-specversion`.
    /// - Throws: `INVALID_ARGUMENT` naming the missing or bad header.
    public static func binary(header: (String) -> String?, body: Data) throws -> CloudEvent {
        func required(_ name: String) throws -> String {
            guard let value = header(name), !value.isEmpty else {
                throw TollgateError(.invalidArgument, "CloudEvent header \(name) is missing")
            }
            return value
        }
        let spec = try required("ce-specversion")
        guard spec == "1.0" else { throw TollgateError(.invalidArgument, "unsupported CloudEvents specversion \(spec)") }
        var time: Timestamp?
        if let text = header("ce-time") {
            guard let parsed = Timestamp(rfc3339: text) else { throw TollgateError(.invalidArgument, "ce-time is not RFC 3339") }
            time = parsed
        }
        return CloudEvent(
            id: try required("ce-id"), source: try required("ce-source"), type: try required("ce-type"), specVersion: spec,
            subject: header("ce-subject"), time: time, dataContentType: header("content-type"), data: body)
    }

    /// Decodes structured mode: the event's attributes and `data` (or `data_base64`) in one
    /// JSON object.
    /// - Throws: `INVALID_ARGUMENT`.
    public static func structured(body: Data) throws -> CloudEvent {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw TollgateError(.invalidArgument, "a structured CloudEvent is a JSON object")
        }
        func required(_ name: String) throws -> String {
            guard let value = object[name] as? String, !value.isEmpty else {
                throw TollgateError(.invalidArgument, "CloudEvent attribute \(name) is missing")
            }
            return value
        }
        let spec = try required("specversion")
        guard spec == "1.0" else { throw TollgateError(.invalidArgument, "unsupported CloudEvents specversion \(spec)") }
        var time: Timestamp?
        if let text = object["time"] as? String {
            guard let parsed = Timestamp(rfc3339: text) else { throw TollgateError(.invalidArgument, "time is not RFC 3339") }
            time = parsed
        }
        var data = Data()
        if let base64 = object["data_base64"] as? String {
            guard let decoded = Data(base64Encoded: base64) else { throw TollgateError(.invalidArgument, "data_base64 is not base64") }
            data = decoded
        } else if let value = object["data"] {
            if let text = value as? String {
                data = Data(text.utf8)
            } else {
                data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
            }
        }
        return CloudEvent(
            id: try required("id"), source: try required("source"), type: try required("type"), specVersion: spec,
            subject: object["subject"] as? String, time: time, dataContentType: object["datacontenttype"] as? String, data: data)
    }
}
