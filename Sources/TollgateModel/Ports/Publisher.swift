/// Publishes messages to a topic, with Pub/Sub's semantics: each message gets a
/// server-assigned id; messages with the same ordering key are delivered in order.
public protocol Publisher: Sendable {
    /// - Returns: the message id the service assigned.
    /// - Throws: `INVALID_ARGUMENT` (over 10 MB, empty message, bad attributes), `NOT_FOUND`
    ///   (no such topic), `UNAVAILABLE`.
    @discardableResult
    func publish(_ message: OutgoingMessage, to topic: String) async throws -> String
}

/// A message to publish: data, attributes and an optional ordering key.
public struct OutgoingMessage: Sendable, Hashable {
    public var data: [UInt8]
    public var attributes: [String: String]
    public var orderingKey: String?

    public init(data: [UInt8], attributes: [String: String] = [:], orderingKey: String? = nil) {
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
    }

    /// Pub/Sub's limits: a message needs data or an attribute; at most 100 attributes,
    /// keys up to 256 bytes (not starting with `goog`), values up to 1,024 bytes; the whole
    /// request up to 10 MB.
    public func validate() throws {
        guard !data.isEmpty || !attributes.isEmpty else {
            throw TollgateError(.invalidArgument, "a message must have data or at least one attribute")
        }
        guard attributes.count <= 100 else { throw TollgateError(.invalidArgument, "more than 100 attributes") }
        for (key, value) in attributes {
            guard !key.isEmpty, key.utf8.count <= 256, !key.hasPrefix("goog") else {
                throw TollgateError(.invalidArgument, "attribute key '\(key)' is empty, over 256 bytes or reserved")
            }
            guard value.utf8.count <= 1_024 else { throw TollgateError(.invalidArgument, "attribute '\(key)' over 1,024 bytes") }
        }
        guard data.count <= 10_000_000 else { throw TollgateError(.invalidArgument, "message over 10 MB") }
        if let orderingKey, orderingKey.utf8.count > 1_024 {
            throw TollgateError(.invalidArgument, "ordering key over 1,024 bytes")
        }
    }
}
