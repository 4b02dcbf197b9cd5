import Foundation
import TollgateGoogle
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// Every port, opened from its URL as gocloud.dev opens drivers: `TOLLGATE_STORE`,
/// `TOLLGATE_BLOBS`, `TOLLGATE_PUBSUB`, `TOLLGATE_TASKS`. With no configuration each
/// opens the same local SQLite file, `.tollgate/state.db`: the embedded default.
extension Ports {
    public static let defaultStoreURL = "sqlite://.tollgate/state.db"

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
    /// - Parameter topics: created on a local (SQLite) publisher, as Terraform creates them
    ///   in the cloud: the topics of the function being started.
    public static func open(environment: Environment, topics: [String] = [], clock: any TollgateModel.Clock = SystemClock()) async throws
        -> Ports
    {
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
        var store: any DocumentStore = try open(
            "TOLLGATE_STORE", storeURL,
            ["sqlite": { SQLiteDocumentStore(try sqlite("TOLLGATE_STORE", $0)) }, "firestore": { try google.firestore($0) }])
        if let milliseconds = environment["TOLLGATE_STORE_LATENCY_MS"] {
            guard storeURL.hasPrefix("sqlite:"), let value = Int(milliseconds), (0...10_000).contains(value) else {
                throw ConfigurationError("TOLLGATE_STORE_LATENCY_MS", "takes 0 to 10000 milliseconds, on a sqlite: store only")
            }
            store = LatentDocumentStore(inner: store, roundTrip: .milliseconds(value))
        }
        // Unset ports share the store's SQLite file. Beside a cloud store an unset port is
        // left unconfigured: a function that never uses it needs no URL for it, and one that
        // does gets an error naming the variable.
        let local = storeURL.hasPrefix("sqlite:") ? storeURL : nil
        let unconfigured = UnconfiguredPort()
        let blobs: any BlobStore =
            try (environment["TOLLGATE_BLOBS"] ?? local).map { url in
                try open(
                    "TOLLGATE_BLOBS", url,
                    ["sqlite": { SQLiteBlobStore(try sqlite("TOLLGATE_BLOBS", $0)) }, "gs": { try google.storage($0) }])
            } ?? unconfigured
        var localPublisher: SQLitePublisher?
        let publisher: any Publisher =
            try (environment["TOLLGATE_PUBSUB"] ?? local).map { url in
                try open(
                    "TOLLGATE_PUBSUB", url,
                    [
                        "sqlite": {
                            let local = SQLitePublisher(try sqlite("TOLLGATE_PUBSUB", $0))
                            localPublisher = local
                            return local
                        },
                        "pubsub": { try google.pubsub($0) },
                    ])
            } ?? unconfigured
        // Locally the topics are created on the fly; in the cloud Terraform creates them.
        if let localPublisher { for topic in topics { try await localPublisher.createTopic(topic) } }
        let tasks: any TaskQueue =
            try (environment["TOLLGATE_TASKS"] ?? local).map { url in
                try open(
                    "TOLLGATE_TASKS", url,
                    ["sqlite": { SQLiteTaskQueue(try sqlite("TOLLGATE_TASKS", $0)) }, "cloudtasks": { try google.tasks($0) }])
            } ?? unconfigured
        return Ports(store: store, blobs: blobs, publisher: publisher, tasks: tasks, clock: clock)
    }
}

/// A port no URL was given for, beside a cloud store: every call fails naming the setting,
/// as a bug in the deployment (`INTERNAL`: logged as an error, redelivered until fixed).
struct UnconfiguredPort: BlobStore, Publisher, TaskQueue {
    private func missing(_ setting: String) -> TollgateError {
        TollgateError(.internal, "\(setting) is not set: this function uses that port and the store is not SQLite")
    }

    func write(_ name: String, _ data: [UInt8], contentType: String, ifGenerationMatch: Int64?) async throws -> Int64 {
        throw missing("TOLLGATE_BLOBS")
    }
    func upload(_ name: String, contentType: String, ifGenerationMatch: Int64?) async throws -> any BlobUpload {
        throw missing("TOLLGATE_BLOBS")
    }
    func read(_ name: String) async throws -> BlobObject { throw missing("TOLLGATE_BLOBS") }
    func read(_ name: String, range: Range<Int64>) async throws -> [UInt8] { throw missing("TOLLGATE_BLOBS") }
    func attributes(_ name: String) async throws -> BlobAttributes? { throw missing("TOLLGATE_BLOBS") }
    func list(prefix: String, pageSize: Int, pageToken: String?) async throws -> BlobPage { throw missing("TOLLGATE_BLOBS") }
    func delete(_ name: String, ifGenerationMatch: Int64?) async throws { throw missing("TOLLGATE_BLOBS") }
    func signedURL(_ name: String, expiresInSeconds: Int64, now: Timestamp) async throws -> String { throw missing("TOLLGATE_BLOBS") }
    func publish(_ message: OutgoingMessage, to topic: String) async throws -> String { throw missing("TOLLGATE_PUBSUB") }
    func enqueue(_ task: HTTPTask, queue: String) async throws { throw missing("TOLLGATE_TASKS") }
}
