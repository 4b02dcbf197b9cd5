import Logging
import TollgateModel

extension OutboxEntry {
    /// Publishes the entry committed at `path`, then deletes it.
    public func publish(through publisher: any Publisher, clearing path: DocumentPath, in store: any DocumentStore, logger: Logger)
        async throws
    {
        let messageId = try await publisher.publish(message, to: topic)
        try await store.delete(path)
        logger.info("published \(topic)", metadata: ["accountId": "\(accountId)", "messageId": "\(messageId)"])
    }
}
