/// What a function declares about itself, once, in code: its trigger and what it needs.
/// The runtime authenticates and decodes from it, the emulator routes from it, and
/// `deploy/` is rendered from it (docs/architecture.md, "Declared once").
public struct FunctionDeclaration: Sendable, Hashable {
    public var name: String
    public var trigger: Trigger
    /// Environment variables holding secrets (Secret Manager references in Cloud Run):
    /// the secret ones of `reads`.
    public var secrets: [String]
    /// The settings it reads beyond the runtime's and the ports' (``Setting``): parsed by
    /// them at start-up, listed in `docs/settings.md`, supplied by the local cloud.
    public var reads: [Setting]
    /// Topics the function publishes to.
    public var publishes: [String]
    /// Push subscriptions besides the trigger (cache invalidation), each to its own path.
    public var subscriptions: [Subscription]
    /// The ports the function opens besides its document store.
    public var ports: Set<Port>
    /// Production settings beyond the ports, by variable; `{url:FUNCTION}` stands for
    /// another function's service URL.
    public var settings: [String: String]
    /// How its Cloud Run service runs it.
    public var service: ServiceSettings
    /// How the sender signs each request, for a public webhook: what the emulator signs
    /// a replayed dead letter with.
    public var webhookSignature: WebhookSignature?
    /// What it does with the usage bucket (the `blobs` port), which decides its Cloud
    /// Storage role; nil when it has no use for the bucket.
    public var blobs: BlobAccess?
    /// Signs V4 links to objects as its own service account (IAM `signBlob` on itself).
    public var signsLinks: Bool
    /// Keeps its leases of quota in Memorystore when the deployment enables it: it joins
    /// the VPC and is told where Redis is.
    public var leasesQuotaInMemorystore: Bool

    public init(
        name: String, trigger: Trigger, secrets: [String] = [], publishes: [String] = [], subscriptions: [Subscription] = [],
        ports: Set<Port> = [], blobs: BlobAccess? = nil, signsLinks: Bool = false, leasesQuotaInMemorystore: Bool = false,
        reads: [Setting] = [], settings: [String: String] = [:], service: ServiceSettings = ServiceSettings(),
        webhookSignature: WebhookSignature? = nil
    ) {
        self.webhookSignature = webhookSignature
        self.name = name
        self.trigger = trigger
        self.reads = reads
        self.secrets = secrets + reads.filter { $0.isSecret && !secrets.contains($0.name) }.map(\.name)
        self.publishes = publishes
        self.subscriptions = subscriptions
        self.ports = ports.union(publishes.isEmpty ? [] : [.publisher]).union(blobs == nil ? [] : [.blobs])
        self.blobs = blobs
        self.signsLinks = signsLinks
        self.leasesQuotaInMemorystore = leasesQuotaInMemorystore
        self.settings = settings
        self.service = service
    }

    /// What a function does with the usage bucket. Each is granted the least Cloud Storage
    /// role that does it, on that bucket only.
    public enum BlobAccess: String, Sendable, Hashable, CaseIterable {
        /// Reads objects (a receipt, to link to it).
        case read
        /// Creates objects and reads them back, never overwriting or deleting one (the export).
        case createAndRead
        /// Reads, lists and deletes objects (retention).
        case manage

        /// The predefined roles that grant it.
        public var storageRoles: [String] {
            switch self {
            case .read: ["roles/storage.objectViewer"]
            case .createAndRead: ["roles/storage.objectCreator", "roles/storage.objectViewer"]
            case .manage: ["roles/storage.objectUser"]
            }
        }
    }

    /// A webhook sender's signature scheme, with the variable holding its secret.
    public enum WebhookSignature: Sendable, Hashable {
        /// `Stripe-Signature`, HMAC-SHA256 over `"<t>.<body>"`.
        case stripe(secret: String)
        /// `svix-id`, `svix-timestamp`, `svix-signature`: HMAC-SHA256 over `"<id>.<t>.<body>"` (Clerk).
        case svix(secret: String)
    }

    /// A port a function opens from a URL variable.
    public enum Port: String, Sendable, Hashable, CaseIterable, Comparable {
        case blobs = "TOLLGATE_BLOBS"
        case publisher = "TOLLGATE_PUBSUB"
        case tasks = "TOLLGATE_TASKS"

        public static func < (lhs: Port, rhs: Port) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The Cloud Run service's shape: resources, scaling, deadline and who may reach it.
    public struct ServiceSettings: Sendable, Hashable {
        public enum Ingress: String, Sendable, Hashable {
            /// Only Google's own senders (Pub/Sub, Scheduler, Tasks) and the VPC.
            case internalOnly = "INGRESS_TRAFFIC_INTERNAL_ONLY"
            /// Also through a Cloud Load Balancer (the API gateway in front of the API).
            case internalAndLoadBalancer = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
            /// The internet: only for a sender outside Google (Stripe).
            case all = "INGRESS_TRAFFIC_ALL"
        }

        public var cpu: String
        public var memory: String
        /// Requests one instance serves at once.
        public var concurrency: Int
        public var maxInstances: Int
        /// The request deadline (Cloud Run's `timeout`).
        public var timeoutSeconds: Int
        public var ingress: Ingress
        /// How the load balancer reaches an `internalAndLoadBalancer` service.
        public enum LoadBalancerRoute: String, Sendable, Hashable {
            /// The gateway behind the load balancer asks it about every API request.
            case gatewayAsks = "gateway"
            /// The load balancer routes a host name of its own to it (browsers call it).
            case host
        }
        public var loadBalancer: LoadBalancerRoute?
        /// What one request's outbound calls may take together (``Deadline``): what the
        /// sender waits, less a margin to answer. nil: the timeout less two seconds.
        public var deadlineMilliseconds: Int?

        public init(
            cpu: String = "1", memory: String = "256Mi", concurrency: Int = 80, maxInstances: Int = 10, timeoutSeconds: Int = 300,
            ingress: Ingress = .internalOnly, loadBalancer: LoadBalancerRoute? = nil, deadlineMilliseconds: Int? = nil
        ) {
            self.loadBalancer = loadBalancer
            self.cpu = cpu
            self.memory = memory
            self.concurrency = concurrency
            self.maxInstances = maxInstances
            self.timeoutSeconds = timeoutSeconds
            self.ingress = ingress
            self.deadlineMilliseconds = deadlineMilliseconds
        }

        /// The budget a request's outbound calls share, in milliseconds.
        public var requestDeadlineMilliseconds: Int { deadlineMilliseconds ?? max(1_000, (timeoutSeconds - 2) * 1_000) }
        public var deadline: Duration { .milliseconds(requestDeadlineMilliseconds) }
    }

    /// A push subscription to `topic`, delivered to `path` with Google's OIDC token.
    public struct Subscription: Sendable, Hashable {
        public var topic: String
        public var path: String
        public init(topic: String, path: String) {
            self.topic = topic
            self.path = path
        }
    }

    public enum Trigger: Sendable, Hashable {
        /// Plain HTTP. `retryingSender` marks a caller that retries non-2xx answers for
        /// a long time (Stripe: three days), so a poison request is dead-lettered and
        /// acknowledged rather than refused; `authenticated` requires a Google OIDC token.
        case http(authenticated: Bool, retryingSender: Bool)
        /// A Pub/Sub push subscription on `topic`.
        case pubSub(topic: String, maxDeliveryAttempts: Int, ackDeadlineSeconds: Int)
        /// A Cloud Tasks queue targeting the function, with the queue's RetryConfig and RateLimits.
        case cloudTasks(queue: String, retry: TaskRetryConfig, limits: TaskRateLimits = TaskRateLimits())
        /// A Cloud Scheduler job (`schedule` in cron syntax, in `timeZone`).
        case scheduler(job: String, schedule: String, timeZone: String)

        public var kind: TriggerKind {
            switch self {
            case .http: .http
            case .pubSub: .pubSub
            case .cloudTasks: .cloudTasks
            case .scheduler: .scheduler
            }
        }

        /// Internal triggers are called by Google with an OIDC token.
        public var requiresOIDC: Bool {
            switch self {
            case .http(let authenticated, _): authenticated
            default: true
            }
        }

        /// Whether the sender redelivers until acknowledged (so poison must be acknowledged).
        public var senderRetries: Bool {
            switch self {
            case .http(_, let retrying): retrying
            default: true
            }
        }
    }
}

/// The four kinds of trigger, named as logs, metrics and Terraform name them.
public enum TriggerKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case http
    case pubSub = "pubsub"
    case cloudTasks = "cloudtasks"
    case scheduler

    public var description: String { rawValue }
}

/// A push subscription's RetryPolicy: redeliveries back off exponentially from
/// `minimumBackoff` to `maximumBackoff` (Pub/Sub's defaults, 10 s and 600 s).
public struct PushRetryPolicy: Sendable, Hashable {
    public var minimumBackoffSeconds: Int64
    public var maximumBackoffSeconds: Int64

    public init(minimumBackoffSeconds: Int64 = 10, maximumBackoffSeconds: Int64 = 600) {
        self.minimumBackoffSeconds = minimumBackoffSeconds
        self.maximumBackoffSeconds = maximumBackoffSeconds
    }

    /// Seconds before the delivery after `failedAttempts` failed ones.
    public func backoff(failedAttempts: Int) -> Int64 {
        let doublings = Int64(min(max(failedAttempts - 1, 0), 30))
        return min(minimumBackoffSeconds << doublings, maximumBackoffSeconds)
    }

    public static let standard = PushRetryPolicy()
}

/// Pub/Sub's acknowledging statuses for a push: anything else is a nack.
public enum PushAcknowledgement {
    public static let statuses: Set<Int> = [102, 200, 201, 202, 204]
}

/// The topics Tollgate's functions publish and subscribe to.
public enum Topic {
    /// An account's entitlements changed: caches keyed by the account must be dropped.
    public static let entitlementsChanged = "entitlements-changed"
    /// Usage events from the API service.
    public static let usageEvents = "usage-events"
}

extension FunctionDeclaration {
    /// The topics the function touches: its trigger's, those it publishes to, those its
    /// extra subscriptions read. The topics that exist are derived from the functions'.
    public var topics: [String] {
        var topics = publishes + subscriptions.map(\.topic)
        if case .pubSub(let topic, _, _) = trigger { topics.append(topic) }
        return Array(Set(topics)).sorted()
    }
}

extension Array where Element == FunctionDeclaration {
    /// Every topic the functions touch, once each, sorted.
    public var topics: [String] {
        var all: Set<String> = []
        for declaration in self { all.formUnion(declaration.topics) }
        return all.sorted()
    }
}

/// The Cloud Tasks queues Tollgate's functions enqueue to.
public enum Queue {
    /// One task per account and exported day, for `usage-report`.
    public static let usageReports = "usage-reports"
}
