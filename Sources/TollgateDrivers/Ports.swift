import Foundation
import TollgateGoogle
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

    /// Opens each port from its environment variable: `sqlite:` URLs on the embedded
    /// fake, `firestore://`, `gs://`, `pubsub://` and `cloudtasks://` on Google Cloud
    /// (each honouring its `*_EMULATOR_HOST`). Ports may mix: blobs on Cloud Storage and
    /// the rest on SQLite, say.
    /// - Throws: ``ConfigurationError`` naming the variable whose URL has no driver here.
    public static func open(environment: Environment, clock: any TollgateModel.Clock = SystemClock()) async throws -> Ports {
        let storeURL = environment["TOLLGATE_STORE"] ?? defaultStoreURL
        let google = GoogleCloud(environment: environment.values, clock: clock)
        var databases: [String: SQLiteDatabase] = [:]
        func sqlite(_ setting: String, _ url: String) throws -> SQLiteDatabase {
            let path: String
            do { path = try SQLiteDatabase.path(fromURL: url) } catch {
                throw ConfigurationError(setting, "is not a valid sqlite URL: \(url)")
            }
            if let open = databases[path] { return open }
            let database = try SQLiteDatabase(path: path, clock: clock)
            databases[path] = database
            return database
        }
        /// The driver for the URL's scheme, or the error that names the setting.
        func open<Port>(_ setting: String, _ url: String, _ drivers: [String: (String) throws -> Port]) throws -> Port {
            let scheme = url.split(separator: ":").first.map(String.init) ?? url
            guard let driver = drivers[scheme] else {
                throw ConfigurationError(
                    setting, "names a '\(scheme)' URL; drivers here: \(drivers.keys.sorted().map { $0 + ":" }.joined(separator: ", "))")
            }
            do { return try driver(url) } catch let error as TollgateError { throw ConfigurationError(setting, error.message) }
        }
        let store: any DocumentStore = try open(
            "TOLLGATE_STORE", storeURL,
            ["sqlite": { SQLiteDocumentStore(try sqlite("TOLLGATE_STORE", $0)) }, "firestore": { try google.firestore($0) }])
        let blobs: any BlobStore = try open(
            "TOLLGATE_BLOBS", environment["TOLLGATE_BLOBS"] ?? storeURL,
            ["sqlite": { SQLiteBlobStore(try sqlite("TOLLGATE_BLOBS", $0)) }, "gs": { try google.storage($0) }])
        var localPublisher: SQLitePublisher?
        let publisher: any Publisher = try open(
            "TOLLGATE_PUBSUB", environment["TOLLGATE_PUBSUB"] ?? storeURL,
            [
                "sqlite": {
                    let local = SQLitePublisher(try sqlite("TOLLGATE_PUBSUB", $0))
                    localPublisher = local
                    return local
                },
                "pubsub": { try google.pubsub($0) },
            ])
        // Locally the topics are created on the fly; in the cloud Terraform creates them.
        if let localPublisher { for topic in Topic.all { try await localPublisher.createTopic(topic) } }
        let tasks: any TaskQueue = try open(
            "TOLLGATE_TASKS", environment["TOLLGATE_TASKS"] ?? storeURL,
            ["sqlite": { SQLiteTaskQueue(try sqlite("TOLLGATE_TASKS", $0)) }, "cloudtasks": { try google.tasks($0) }])
        return Ports(store: store, blobs: blobs, publisher: publisher, tasks: tasks, clock: clock)
    }
}
