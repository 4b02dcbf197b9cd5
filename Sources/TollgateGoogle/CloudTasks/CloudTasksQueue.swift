import Foundation
import TollgateModel

/// The `TaskQueue` port on Cloud Tasks' v2 REST API
/// (`cloudtasks://projects/P/locations/L[/queues/Q][?serviceAccount=EMAIL]`; a queue in
/// the URL replaces the name the code asks for, so a deployment may name its own): HTTP
/// tasks with their
/// deterministic names (so a second enqueue of the same work is `ALREADY_EXISTS`, which
/// every caller treats as done), schedule time, and an OIDC token minted by Cloud Tasks
/// for the service account (the URL's, else the function's own) with the target URL's
/// origin as audience — what the receiving function's OIDC check expects.
public struct CloudTasksQueue: TaskQueue {
    public let project: String
    public let location: String
    /// The deployment's queue, when the URL names one.
    public let queue: String?
    let serviceAccount: String?
    let credentials: (any GoogleCredentials)?
    let api: GoogleAPIClient

    public init(
        project: String, location: String, queue: String? = nil, serviceAccount: String?, credentials: (any GoogleCredentials)?,
        api: GoogleAPIClient
    ) {
        self.project = project
        self.location = location
        self.queue = queue
        self.serviceAccount = serviceAccount
        self.credentials = credentials
        self.api = api
    }

    /// - Throws: `INVALID_ARGUMENT` unless the URL is `cloudtasks://projects/P/locations/L`.
    public init(url: String, credentials: (any GoogleCredentials)?, api: GoogleAPIClient) throws {
        guard url.hasPrefix("cloudtasks://") else { throw TollgateError(.invalidArgument, "not a cloudtasks:// URL: \(url)") }
        let rest = url.dropFirst("cloudtasks://".count)
        let pathPart = rest.prefix { $0 != "?" }
        let parts = pathPart.split(separator: "/").map(String.init)
        guard parts.count == 4 || (parts.count == 6 && parts[4] == "queues"), parts[0] == "projects", parts[2] == "locations" else {
            throw TollgateError(.invalidArgument, "a Cloud Tasks URL is cloudtasks://projects/P/locations/L[/queues/Q]: \(url)")
        }
        var account: String?
        if let question = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") where pair.hasPrefix("serviceAccount=") {
                account = String(pair.dropFirst("serviceAccount=".count)).removingPercentEncoding
            }
        }
        self.init(
            project: parts[1], location: parts[3], queue: parts.count == 6 ? parts[5] : nil, serviceAccount: account,
            credentials: credentials, api: api)
    }

    func queueName(_ requested: String) -> String { "projects/\(project)/locations/\(location)/queues/\(queue ?? requested)" }

    public func enqueue(_ task: HTTPTask, queue: String) async throws {
        try task.validate()
        let email: String? =
            if let serviceAccount { serviceAccount } else if let credentials { try await credentials.serviceAccountEmail() } else { nil }
        let body = try Self.createRequest(task, queueName: queueName(queue), serviceAccount: email)
        // A named task is safe to retry: a second create is ALREADY_EXISTS, not a duplicate.
        _ = try await api.json("POST", "/v2/\(queueName(queue))/tasks", body: body, idempotent: task.name != nil)
    }

    static func createRequest(_ task: HTTPTask, queueName: String, serviceAccount: String?) throws -> JSONValue {
        var http: [String: JSONValue] = [
            "url": .string(task.url), "httpMethod": .string("POST"), "body": .string(Data(task.body).base64EncodedString()),
        ]
        var headers = task.headers
        if headers.keys.first(where: { $0.lowercased() == "content-type" }) == nil { headers["Content-Type"] = "application/json" }
        http["headers"] = .object(headers.mapValues(JSONValue.string))
        if let serviceAccount {
            http["oidcToken"] = .object(["serviceAccountEmail": .string(serviceAccount), "audience": .string(try audience(task.url))])
        }
        var created: [String: JSONValue] = ["httpRequest": .object(http)]
        if let name = task.name { created["name"] = .string("\(queueName)/tasks/\(name)") }
        if let time = task.scheduleTime { created["scheduleTime"] = .string(time.rfc3339) }
        return .object(["task": .object(created), "responseView": .string("BASIC")])
    }

    /// The target's origin: Cloud Run accepts an ID token whose audience is the service URL.
    static func audience(_ url: String) throws -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else {
            throw TollgateError(.invalidArgument, "task URL \(url) is not absolute")
        }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }
}
