import Foundation
import Logging
import Synchronization
import TollgateHTTP
import TollgateModel

/// Opens the Google drivers from their URLs, sharing one HTTP client (so connections are
/// reused across drivers) and one set of Application Default Credentials, both made on
/// first use: a function configured for SQLite starts no HTTP client and looks for no
/// Google credentials.
public final class GoogleCloud: Sendable {
    public let environment: [String: String]
    private let madeTransport = Mutex<(any HTTPTransport)?>(nil)
    let clock: any TollgateModel.Clock
    let logger: Logger
    private let resolved = Mutex<(any GoogleCredentials)?>(nil)

    public init(
        environment: [String: String], transport: (any HTTPTransport)? = nil, clock: any TollgateModel.Clock = SystemClock(),
        logger: Logger = Logger(label: "tollgate.google")
    ) {
        self.environment = environment
        madeTransport.withLock { $0 = transport }
        self.clock = clock
        self.logger = logger
    }

    /// The HTTP client every driver shares (libcurl unless the caller gave one).
    public var transport: any HTTPTransport {
        madeTransport.withLock { made in
            if let made { return made }
            let client = CurlHTTPClient()
            made = client
            return client
        }
    }

    /// Application Default Credentials, resolved once.
    public func credentials() throws -> any GoogleCredentials {
        try resolved.withLock { cached in
            if let cached { return cached }
            let credentials = try ApplicationDefaultCredentials.resolve(environment: environment, transport: transport, clock: clock)
            cached = credentials
            return credentials
        }
    }

    /// The API client for one service, pointed at its emulator when `emulatorVariable` is set.
    public func client(service: String, production: String, emulatorVariable: String?) throws -> GoogleAPIClient {
        let endpoint = try GoogleEndpoint.resolve(
            production: production, emulatorVariable: emulatorVariable ?? "", environment: environment, credentials: credentials)
        return GoogleAPIClient(service: service, endpoint: endpoint, transport: transport, logger: logger)
    }

    public func firestore(_ url: String) throws -> FirestoreDocumentStore {
        try FirestoreDocumentStore(
            url: url,
            api: client(service: "firestore", production: "https://firestore.googleapis.com", emulatorVariable: "FIRESTORE_EMULATOR_HOST"))
    }

    public func storage(_ url: String) throws -> CloudStorageBlobStore {
        try CloudStorageBlobStore(
            url: url,
            api: client(service: "storage", production: "https://storage.googleapis.com", emulatorVariable: "STORAGE_EMULATOR_HOST"))
    }

    public func pubsub(_ url: String) throws -> PubSubPublisher {
        try PubSubPublisher(
            url: url, api: client(service: "pubsub", production: "https://pubsub.googleapis.com", emulatorVariable: "PUBSUB_EMULATOR_HOST"))
    }

    public func tasks(_ url: String) throws -> CloudTasksQueue {
        let api = try client(
            service: "cloudtasks", production: "https://cloudtasks.googleapis.com", emulatorVariable: "CLOUD_TASKS_EMULATOR_HOST")
        return try CloudTasksQueue(url: url, credentials: api.endpoint.credentials, api: api)
    }

    public func secretManager() throws -> SecretManagerClient {
        SecretManagerClient(
            api: try client(service: "secretmanager", production: "https://secretmanager.googleapis.com", emulatorVariable: nil),
            clock: clock)
    }

    /// V4 signed URLs for `gs://` objects, signed by the ADC service account.
    public func signedURLs() throws -> SignedURLBuilder {
        let base =
            environment["STORAGE_EMULATOR_HOST"].map { $0.hasPrefix("http") ? $0 : "http://\($0)" } ?? "https://storage.googleapis.com"
        return SignedURLBuilder(credentials: try credentials(), baseURL: base)
    }
}
