import Foundation
import TollgateModel

/// The per-function part of `deploy/terraform`, rendered from the functions'
/// declarations into `functions.auto.tfvars.json` (`tollgate deploy render`): triggers,
/// topics, schedules, queues, secrets, ports, resources and each service's whole
/// environment. Terraform fills in its placeholders (``placeholders``) from its variables
/// and resources (`local.placeholders` in main.tf) and adds only what the platform team sets.
public enum TerraformVariables {
    /// Where the rendered file lives in the repository.
    public static let path = "deploy/terraform/functions.auto.tfvars.json"

    /// The Secret Manager secret id of a secret variable: `STRIPE_API_KEY` →
    /// `tollgate-stripe-api-key`, `TOLLGATE_KEY_PEPPER` → `tollgate-key-pepper`.
    public static func secretID(_ variable: String) -> String {
        let bare = variable.hasPrefix("TOLLGATE_") ? String(variable.dropFirst("TOLLGATE_".count)) : variable
        return "tollgate-" + bare.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// Every placeholder a rendered value may hold, besides `{url:FUNCTION}` (that
    /// function's Cloud Run URL); main.tf fills in each, and a test proves it.
    public static let placeholders = [
        "{project}", "{region}", "{bucket}", "{pubsub_invoker}", "{scheduler_invoker}", "{tasks_invoker}", "{price_tiers}",
        "{clerk_issuer}", "{dashboard_origins}",
    ]

    /// The metrics port the collector sidecar scrapes (deploy/monitoring/run-gmp-config.yaml).
    public static let metricsPort = "9091"

    /// The service accounts that call a function with a Google OIDC token, as placeholders.
    static func invokers(_ declaration: FunctionDeclaration) -> [String] {
        var invokers: [String] = []
        if case .pubSub = declaration.trigger { invokers.append("{pubsub_invoker}") }
        if !declaration.subscriptions.isEmpty, invokers.isEmpty { invokers.append("{pubsub_invoker}") }
        if case .scheduler = declaration.trigger { invokers.append("{scheduler_invoker}") }
        if case .cloudTasks = declaration.trigger { invokers.append("{tasks_invoker}") }
        return invokers
    }

    /// The URL each port variable gets in production.
    static func url(_ port: FunctionDeclaration.Port) -> String {
        switch port {
        case .blobs: "gs://{bucket}"
        case .publisher: "pubsub://{project}"
        case .tasks: "cloudtasks://projects/{project}/locations/{region}/queues/\(Queue.usageReports)?serviceAccount={tasks_invoker}"
        }
    }

    public static func render(_ declarations: [FunctionDeclaration]) -> JSONValue {
        var functions: [String: JSONValue] = [:]
        var queues: [String: JSONValue] = [:]
        for declaration in declarations {
            var environment: [String: JSONValue] = [
                "TOLLGATE_STORE": .string("firestore://{project}/(default)"),
                // The project for log lines' trace ids; /metrics on loopback for the collector.
                "GOOGLE_CLOUD_PROJECT": .string("{project}"), "TOLLGATE_METRICS_PORT": .string(metricsPort),
            ]
            for port in declaration.ports.sorted() { environment[port.rawValue] = .string(url(port)) }
            let invokers = invokers(declaration)
            if !invokers.isEmpty {
                // Who may call with an OIDC token, and the audience they sign it for.
                environment["TOLLGATE_AUDIENCE"] = .string("{url:\(declaration.name)}")
                environment["TOLLGATE_INVOKERS"] = .string(invokers.joined(separator: ","))
            }
            for (name, value) in declaration.settings { environment[name] = .string(value) }
            var function: [String: JSONValue] = [
                "trigger": .string(declaration.trigger.kind.rawValue),
                // Called with a Google OIDC token (the runtime checks it): every trigger but public HTTP.
                "authenticated": .bool(declaration.trigger.requiresOIDC),
                "env": .object(environment),
                "secrets": .object(Dictionary(uniqueKeysWithValues: declaration.secrets.map { ($0, JSONValue.string(secretID($0))) })),
                "publishes": .array(declaration.publishes.map(JSONValue.string)),
                "subscriptions": .array(
                    declaration.subscriptions.map { .object(["topic": .string($0.topic), "path": .string($0.path)]) }),
                "cpu": .string(declaration.service.cpu), "memory": .string(declaration.service.memory),
                "concurrency": .integer(Int64(declaration.service.concurrency)),
                "max_instances": .integer(Int64(declaration.service.maxInstances)),
                "timeout_seconds": .integer(Int64(declaration.service.timeoutSeconds)),
                "ingress": .string(declaration.service.ingress.rawValue),
                // Behind the load balancer: asked by the gateway, or a host of its own.
                "load_balancer": declaration.service.loadBalancer.map { .string($0.rawValue) } ?? .null,
                // Capabilities, so that Terraform grants and wires by what a function does,
                // never by its name.
                "blob_roles": .array((declaration.blobs?.storageRoles ?? []).map(JSONValue.string)),
                "signs_links": .bool(declaration.signsLinks),
                "quota_in_memorystore": .bool(declaration.leasesQuotaInMemorystore),
                "topic": .null, "max_delivery_attempts": .null, "ack_deadline_seconds": .null, "job": .null, "schedule": .null,
                "time_zone": .null, "queue": .null,
            ]
            switch declaration.trigger {
            case .http:
                break
            case .pubSub(let topic, let attempts, let deadline):
                function["topic"] = .string(topic)
                function["max_delivery_attempts"] = .integer(Int64(attempts))
                function["ack_deadline_seconds"] = .integer(Int64(deadline))
            case .scheduler(let job, let schedule, let zone):
                function["job"] = .string(job)
                function["schedule"] = .string(schedule)
                function["time_zone"] = .string(zone)
            case .cloudTasks(let queue, let retry, let limits):
                function["queue"] = .string(queue)
                queues[queue] = .object([
                    "target": .string(declaration.name),
                    "max_attempts": .integer(Int64(retry.maxAttempts)),
                    "min_backoff": .string("\(retry.minBackoffSeconds)s"),
                    "max_backoff": .string("\(retry.maxBackoffSeconds)s"),
                    "max_doublings": .integer(Int64(retry.maxDoublings)),
                    "max_retry_duration": .string("\(retry.maxRetryDurationSeconds)s"),
                    "max_dispatches_per_second": .double(limits.maxDispatchesPerSecond),
                    "max_concurrent_dispatches": .integer(Int64(limits.maxConcurrentDispatches)),
                ])
            }
            functions[declaration.name] = .object(function)
        }
        let retry = PushRetryPolicy.standard
        return .object([
            "functions": .object(functions),
            "queues": .object(queues),
            "topics": .array(declarations.topics.map(JSONValue.string)),
            "push_retry": .object([
                "minimum_backoff": .string("\(retry.minimumBackoffSeconds)s"),
                "maximum_backoff": .string("\(retry.maximumBackoffSeconds)s"),
            ]),
        ])
    }

    /// The file's text: sorted, indented JSON, with a final newline.
    public static func text(_ declarations: [FunctionDeclaration]) -> String {
        render(declarations).rendered(pretty: true) + "\n"
    }
}
