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

    /// The ports' settings: a URL each, and Google's own variables the drivers honour.
    public enum Settings {
        public static let store = Setting(
            "TOLLGATE_STORE", default: Ports.defaultStoreURL,
            summary: "the document store: `firestore://PROJECT[/DATABASE]` or `sqlite://PATH` (the embedded default)")
        public static let blobs = Setting(
            "TOLLGATE_BLOBS", whenUnset: "the store's SQLite file; unconfigured beside Firestore",
            summary: "the usage bucket: `gs://BUCKET` or `sqlite://PATH`")
        public static let publisher = Setting(
            "TOLLGATE_PUBSUB", whenUnset: "the store's SQLite file; unconfigured beside Firestore",
            summary: "where topics are: `pubsub://PROJECT` or `sqlite://PATH`")
        public static let tasks = Setting(
            "TOLLGATE_TASKS", whenUnset: "the store's SQLite file; unconfigured beside Firestore",
            summary: "where queues are: `cloudtasks://PROJECT/LOCATION` or `sqlite://PATH`")
        public static let storeLatency = Setting(
            "TOLLGATE_STORE_LATENCY_MS", .integer(0...10_000), whenUnset: "none",
            summary:
                "on a `sqlite:` store only: every store call and transaction step waits this long, to run with Firestore's round trips locally (never in production)"
        )
        public static let clockOffset = Setting(
            "TOLLGATE_CLOCK_OFFSET_SECONDS", .integer(-3_162_240_000...3_162_240_000), whenUnset: "the wall clock",
            summary: "moves the clock by whole seconds, on local state or Firestore's emulator only (`tollgate serve --processes --start`)")
        public static let firestoreEmulator = Setting(
            "FIRESTORE_EMULATOR_HOST", whenUnset: "Google's Firestore",
            summary: "Google's Firestore emulator, `HOST:PORT`, as Google's clients read it")
        public static let storageEmulator = Setting(
            "STORAGE_EMULATOR_HOST", whenUnset: "Google's Cloud Storage",
            summary: "a Cloud Storage emulator (fake-gcs-server), as Google's clients read it")
        public static let pubsubEmulator = Setting(
            "PUBSUB_EMULATOR_HOST", whenUnset: "Google's Pub/Sub",
            summary: "Google's Pub/Sub emulator, `HOST:PORT`, as Google's clients read it")
        public static let tasksEmulator = Setting(
            "CLOUD_TASKS_EMULATOR_HOST", whenUnset: "Google's Cloud Tasks", summary: "a Cloud Tasks emulator, `HOST:PORT`")
        public static let credentials = Setting(
            "GOOGLE_APPLICATION_CREDENTIALS", whenUnset: "the metadata server's tokens (Cloud Run)",
            summary: "a service account key file, for runs outside Google Cloud")
        public static let metadataHost = Setting(
            "GCE_METADATA_HOST", default: "metadata.google.internal", summary: "the metadata server, as Google's clients read it")

        public static let all = [
            store, blobs, publisher, tasks, storeLatency, clockOffset, firestoreEmulator, storageEmulator, pubsubEmulator, tasksEmulator,
            credentials, metadataHost,
        ]
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
    /// - Parameter topics: created on a local (SQLite) publisher, as Terraform creates them
    ///   in the cloud: the topics of the function being started.
    public static func open(environment: Environment, topics: [String] = [], clock: any TollgateModel.Clock = SystemClock()) async throws
        -> Ports
    {
        let storeURL = try environment.required(Settings.store)
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
            Settings.store.name, storeURL,
            ["sqlite": { SQLiteDocumentStore(try sqlite(Settings.store.name, $0)) }, "firestore": { try google.firestore($0) }])
        if let value = try environment.optionalInteger(Settings.storeLatency) {
            guard storeURL.hasPrefix("sqlite:") else {
                throw ConfigurationError(Settings.storeLatency.name, "takes 0 to 10000 milliseconds, on a sqlite: store only")
            }
            store = LatentDocumentStore(inner: store, roundTrip: .milliseconds(value))
        }
        // Unset ports share the store's SQLite file. Beside a cloud store an unset port is
        // left unconfigured: a function that never uses it needs no URL for it, and one that
        // does gets an error naming the variable.
        let local = storeURL.hasPrefix("sqlite:") ? storeURL : nil
        let unconfigured = UnconfiguredPort()
        let blobs: any BlobStore =
            try (try environment.text(Settings.blobs) ?? local).map { url in
                try open(
                    Settings.blobs.name, url,
                    ["sqlite": { SQLiteBlobStore(try sqlite(Settings.blobs.name, $0)) }, "gs": { try google.storage($0) }])
            } ?? unconfigured
        var localPublisher: SQLitePublisher?
        let publisher: any Publisher =
            try (try environment.text(Settings.publisher) ?? local).map { url in
                try open(
                    Settings.publisher.name, url,
                    [
                        "sqlite": {
                            let local = SQLitePublisher(try sqlite(Settings.publisher.name, $0))
                            localPublisher = local
                            return local
                        },
                        "pubsub": { try google.pubsub($0) },
                    ])
            } ?? unconfigured
        // Locally the topics are created on the fly; in the cloud Terraform creates them.
        if let localPublisher { for topic in topics { try await localPublisher.createTopic(topic) } }
        let tasks: any TaskQueue =
            try (try environment.text(Settings.tasks) ?? local).map { url in
                try open(
                    Settings.tasks.name, url,
                    ["sqlite": { SQLiteTaskQueue(try sqlite(Settings.tasks.name, $0)) }, "cloudtasks": { try google.tasks($0) }])
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
