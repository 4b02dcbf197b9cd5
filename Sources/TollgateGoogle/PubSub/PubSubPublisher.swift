import Foundation
import TollgateModel

/// The `Publisher` port on Pub/Sub's REST API (`pubsub://PROJECT`), batching as Google's
/// client libraries do: messages for one topic wait up to `delay` and go out together
/// when the batch reaches `maxMessages` or `maxBytes`; each caller gets its own message
/// id back. Publishing is retried on retryable codes (a retry may duplicate a message,
/// which Pub/Sub's at-least-once delivery allows and every subscriber here dedupes).
public struct PubSubPublisher: Publisher {
    public struct Batching: Sendable {
        public var maxMessages: Int
        public var maxBytes: Int
        public var delay: Duration
        /// Google's client-library defaults: 100 messages, 1 MB, 10 ms.
        public init(maxMessages: Int = 100, maxBytes: Int = 1_000_000, delay: Duration = .milliseconds(10)) {
            self.maxMessages = maxMessages
            self.maxBytes = maxBytes
            self.delay = delay
        }
    }

    public let project: String
    let api: GoogleAPIClient
    let batcher: Batcher

    public init(project: String, api: GoogleAPIClient, batching: Batching = Batching()) {
        self.project = project
        self.api = api
        batcher = Batcher(batching: batching)
    }

    /// - Throws: `INVALID_ARGUMENT` unless the URL is `pubsub://PROJECT`.
    public init(url: String, api: GoogleAPIClient, batching: Batching = Batching()) throws {
        guard url.hasPrefix("pubsub://") else { throw TollgateError(.invalidArgument, "not a pubsub:// URL: \(url)") }
        let project = String(url.dropFirst("pubsub://".count))
        guard !project.isEmpty, !project.contains("/") else {
            throw TollgateError(.invalidArgument, "a Pub/Sub URL is pubsub://PROJECT: \(url)")
        }
        self.init(project: project, api: api, batching: batching)
    }

    func topicPath(_ topic: String) -> String { "/v1/projects/\(project)/topics/\(PercentEncoding.unreserved(topic))" }

    @discardableResult
    public func publish(_ message: OutgoingMessage, to topic: String) async throws -> String {
        try message.validate()
        return try await batcher.add(message, topic: topic) { messages in try await send(messages, to: topic) }
    }

    /// One `topics.publish` request; the ids come back in the order sent.
    func send(_ messages: [OutgoingMessage], to topic: String) async throws -> [String] {
        let answer = try await api.json("POST", topicPath(topic) + ":publish", body: Self.publishRequest(messages), idempotent: true)
        let ids = (answer["messageIds"]?.arrayValue ?? []).compactMap(\.stringValue)
        guard ids.count == messages.count else {
            throw TollgateError(.unavailable, "pubsub returned \(ids.count) message ids for \(messages.count) messages")
        }
        return ids
    }

    static func publishRequest(_ messages: [OutgoingMessage]) -> JSONValue {
        .object([
            "messages": .array(
                messages.map { message in
                    var fields: [String: JSONValue] = [:]
                    if !message.data.isEmpty { fields["data"] = .string(Data(message.data).base64EncodedString()) }
                    if !message.attributes.isEmpty { fields["attributes"] = .object(message.attributes.mapValues(JSONValue.string)) }
                    if let key = message.orderingKey { fields["orderingKey"] = .string(key) }
                    return .object(fields)
                })
        ])
    }

    /// Collects messages per topic; a batch is flushed by whichever comes first: its
    /// count, its size, or the delay since its first message. Messages sharing an
    /// ordering key stay in publish order: batches of a topic go out one at a time.
    actor Batcher {
        typealias Send = @Sendable ([OutgoingMessage]) async throws -> [String]
        private struct Pending {
            var messages: [OutgoingMessage] = []
            var waiters: [CheckedContinuation<String, any Error>] = []
            var bytes = 0
            var generation = 0
        }

        private let batching: Batching
        private var pending: [String: Pending] = [:]
        private var flushing: [String: Task<Void, Never>] = [:]

        init(batching: Batching) { self.batching = batching }

        func add(_ message: OutgoingMessage, topic: String, send: @escaping Send) async throws -> String {
            try await withCheckedThrowingContinuation { continuation in
                var batch = pending[topic] ?? Pending()
                let size = message.data.count + message.attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
                if !batch.messages.isEmpty, batch.bytes + size > batching.maxBytes {
                    pending[topic] = batch
                    flush(topic, send: send)
                    batch = pending[topic] ?? Pending()
                }
                batch.messages.append(message)
                batch.waiters.append(continuation)
                batch.bytes += size
                let first = batch.messages.count == 1
                pending[topic] = batch
                if batch.messages.count >= batching.maxMessages {
                    flush(topic, send: send)
                } else if first {
                    let generation = batch.generation
                    let delay = batching.delay
                    Task {
                        try? await Task.sleep(for: delay)
                        self.flushIfStill(topic, generation: generation, send: send)
                    }
                }
            }
        }

        private func flushIfStill(_ topic: String, generation: Int, send: @escaping Send) {
            guard let batch = pending[topic], batch.generation == generation, !batch.messages.isEmpty else { return }
            flush(topic, send: send)
        }

        private func flush(_ topic: String, send: @escaping Send) {
            guard let batch = pending[topic], !batch.messages.isEmpty else { return }
            pending[topic] = Pending(generation: batch.generation + 1)
            let previous = flushing[topic]
            flushing[topic] = Task {
                await previous?.value
                do {
                    let ids = try await send(batch.messages)
                    for (waiter, id) in zip(batch.waiters, ids) { waiter.resume(returning: id) }
                } catch {
                    for waiter in batch.waiters { waiter.resume(throwing: error) }
                }
            }
        }
    }
}
