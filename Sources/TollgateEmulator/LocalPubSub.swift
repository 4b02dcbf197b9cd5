import TollgateModel
import TollgateSQLite

/// The local cloud's Pub/Sub topics API, one set of rules for both of `tollgate serve`'s
/// fronts: REST (Tollgate's drivers, `tollgate publish`, curl) and gRPC (Google's client
/// libraries). A message published through either reaches the same SQLite topics and is
/// pushed to the same subscriptions.
///
/// The local cloud is one project, ``LocalCloudNames/project``: a name in another project
/// is `NOT_FOUND`, as a topic of a project nobody created would be.
public struct LocalPubSub: Sendable {
    let cloud: LocalCloud
    var publisher: SQLitePublisher { cloud.publisher }

    public init(cloud: LocalCloud) { self.cloud = cloud }

    /// One line in `serve`'s live log for a refused call, as the REST front writes: the
    /// caller gets the error, the developer watching sees what was refused and why.
    public func logRefusal(front: String, call: String, _ error: TollgateError, started: ContinuousClock.Instant) {
        cloud.log(
            LocalCloud.Delivery(
                time: cloud.clock.now(), function: "local-cloud", trigger: front, detail: call, status: error.code.httpStatus,
                latency: ContinuousClock.now - started, attempt: 1, outcome: "refused: \(error.code.name) \(error.message)"))
    }

    /// Pub/Sub's publish limits: 1,000 messages and 10 MB a request.
    public static let maxMessagesPerPublish = 1_000
    public static let maxPublishBytes = 10_000_000

    /// The topic id in `projects/{project}/topics/{topic}`.
    /// - Throws: `INVALID_ARGUMENT` for a malformed name, `NOT_FOUND` for another project.
    public static func topicID(_ resourceName: String) throws -> String {
        let parts = resourceName.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "projects", parts[2] == "topics", !parts[1].isEmpty, !parts[3].isEmpty else {
            throw TollgateError(.invalidArgument, "Invalid [topics] name: (name=\(resourceName)); it is projects/PROJECT/topics/TOPIC")
        }
        try checkProject(String(parts[1]))
        return String(parts[3])
    }

    /// - Throws: `NOT_FOUND` unless `project` is the local cloud's.
    public static func checkProject(_ project: String) throws {
        guard project == LocalCloudNames.project else {
            throw TollgateError(
                .notFound, "project \(project) does not exist here: the local cloud is the one project \(LocalCloudNames.project)")
        }
    }

    public static func resourceName(_ topic: String) -> String { "projects/\(LocalCloudNames.project)/topics/\(topic)" }

    /// Creates a topic. Ids follow Pub/Sub's rules: 3 to 255 characters, a letter first,
    /// then letters, digits and `-_.~+%`, never starting with `goog`.
    /// - Throws: `ALREADY_EXISTS` if it exists.
    public func createTopic(_ resourceName: String) async throws -> String {
        let topic = try Self.topicID(resourceName)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+%")
        guard (3...255).contains(topic.count), topic.first?.isLetter == true, topic.first?.isASCII == true,
            topic.allSatisfy(allowed.contains), !topic.lowercased().hasPrefix("goog")
        else {
            throw TollgateError(
                .invalidArgument,
                "Invalid [topics] name: (name=\(resourceName)); a topic id is 3 to 255 of [A-Za-z0-9-_.~+%], a letter first, not goog…")
        }
        guard try await publisher.createTopic(topic) else { throw TollgateError(.alreadyExists, "Topic already exists") }
        return Self.resourceName(topic)
    }

    /// - Throws: `NOT_FOUND` if the topic does not exist.
    public func getTopic(_ resourceName: String) async throws -> String {
        let topic = try Self.topicID(resourceName)
        guard try await publisher.topicExists(topic) else { throw TollgateError(.notFound, "Topic not found") }
        return Self.resourceName(topic)
    }

    /// A page of the project's topics, in name order, and the token of the next page
    /// (empty on the last page). The token is the last name of the page.
    public func listTopics(project resourceName: String, pageSize: Int, pageToken: String) async throws -> (
        topics: [String], nextPageToken: String
    ) {
        let parts = resourceName.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "projects" else {
            throw TollgateError(.invalidArgument, "Invalid [projects] name: (name=\(resourceName))")
        }
        try Self.checkProject(String(parts[1]))
        guard pageSize >= 0 else { throw TollgateError(.invalidArgument, "page size is negative") }
        let size = pageSize == 0 ? 100 : min(pageSize, 1_000)
        let page = try await publisher.topics(after: pageToken, limit: size + 1)
        let shown = Array(page.prefix(size))
        return (shown.map(Self.resourceName), page.count > size ? shown.last ?? "" : "")
    }

    /// Publishes a batch, all or nothing, in the batch's order.
    /// - Throws: `INVALID_ARGUMENT` for no messages, too many, over 10 MB, an invalid
    ///   message or mixed ordering keys; `NOT_FOUND` for a topic that does not exist.
    public func publish(_ messages: [OutgoingMessage], to resourceName: String) async throws -> [String] {
        let topic = try Self.topicID(resourceName)
        guard !messages.isEmpty, messages.count <= Self.maxMessagesPerPublish else {
            throw TollgateError(.invalidArgument, "a publish request has 1 to 1,000 messages, not \(messages.count)")
        }
        let bytes = messages.reduce(0) { total, message in
            total + message.data.count + (message.orderingKey?.utf8.count ?? 0)
                + message.attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        }
        guard bytes <= Self.maxPublishBytes else {
            throw TollgateError(.invalidArgument, "the request's messages are \(bytes) bytes, over Pub/Sub's 10 MB")
        }
        guard Set(messages.map { $0.orderingKey ?? "" }).count == 1 else {
            throw TollgateError(.invalidArgument, "the messages of one publish request must have the same ordering key")
        }
        return try await publisher.publish(messages, to: topic)
    }
}
