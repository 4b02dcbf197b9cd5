import Foundation
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// Every port, opened from its URL as gocloud.dev opens drivers: `TOLLGATE_STORE`,
/// `TOLLGATE_BLOBS`, `TOLLGATE_PUBSUB`, `TOLLGATE_TASKS`. With no configuration each
/// opens the same local SQLite file, `.tollgate/state.db`: the embedded default.
public struct Ports: Sendable {
    public var store: any DocumentStore
    public var blobs: any BlobStore
    public var publisher: any Publisher
    public var tasks: any TaskQueue
    public var clock: any TollgateModel.Clock

    public static let defaultStoreURL = "sqlite://.tollgate/state.db"

    public init(
        store: any DocumentStore, blobs: any BlobStore, publisher: any Publisher, tasks: any TaskQueue, clock: any TollgateModel.Clock
    ) {
        self.store = store
        self.blobs = blobs
        self.publisher = publisher
        self.tasks = tasks
        self.clock = clock
    }

    /// All ports on one SQLite database.
    public init(sqlite database: SQLiteDatabase) {
        self.init(
            store: SQLiteDocumentStore(database), blobs: SQLiteBlobStore(database), publisher: SQLitePublisher(database),
            tasks: SQLiteTaskQueue(database), clock: database.clock)
    }

    /// Opens each port from its environment variable.
    /// - Throws: ``ConfigurationError`` naming the variable whose URL has no driver here.
    public static func open(environment: Environment, clock: any TollgateModel.Clock = SystemClock()) async throws -> Ports {
        let storeURL = environment["TOLLGATE_STORE"] ?? defaultStoreURL
        var databases: [String: SQLiteDatabase] = [:]
        func sqlite(_ setting: String, _ url: String) throws -> SQLiteDatabase {
            guard url.hasPrefix("sqlite:") else {
                let scheme = url.split(separator: ":").first.map(String.init) ?? url
                throw ConfigurationError(setting, "names a '\(scheme)' URL, and this build has drivers for sqlite: URLs only")
            }
            let path: String
            do { path = try SQLiteDatabase.path(fromURL: url) } catch {
                throw ConfigurationError(setting, "is not a valid sqlite URL: \(url)")
            }
            if let open = databases[path] { return open }
            let database = try SQLiteDatabase(path: path, clock: clock)
            databases[path] = database
            return database
        }
        let store = try sqlite("TOLLGATE_STORE", storeURL)
        let blobs = try sqlite("TOLLGATE_BLOBS", environment["TOLLGATE_BLOBS"] ?? storeURL)
        let pubsub = try sqlite("TOLLGATE_PUBSUB", environment["TOLLGATE_PUBSUB"] ?? storeURL)
        let tasks = try sqlite("TOLLGATE_TASKS", environment["TOLLGATE_TASKS"] ?? storeURL)
        let publisher = SQLitePublisher(pubsub)
        for topic in Topic.all { try await publisher.createTopic(topic) }
        return Ports(
            store: SQLiteDocumentStore(store), blobs: SQLiteBlobStore(blobs), publisher: publisher, tasks: SQLiteTaskQueue(tasks),
            clock: clock)
    }
}
