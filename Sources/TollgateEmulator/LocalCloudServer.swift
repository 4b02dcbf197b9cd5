import Foundation
import Hummingbird
import Logging
import NIOCore
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// The local cloud's HTTP face. Each function under its own path (`/usage-recorder/…`,
/// the rest of the path is what the function sees), the parts of Google's APIs a
/// developer drives by hand, in their own REST shapes, so Google's REST clients and
/// Tollgate's own drivers work against it (not the gRPC clients):
/// - Pub/Sub topics (`LocalPubSub`'s rules, which the gRPC front shares): `POST
///   /v1/projects/P/topics/T:publish`, `PUT|GET /v1/projects/P/topics/T`, `GET
///   /v1/projects/P/topics`
/// - `POST /v1/projects/P/locations/L/jobs/J:run` (Cloud Scheduler: run a job now)
///
/// and the emulator's own controls: `GET /` (what runs where), `GET|POST /_emulator/clock`
/// (`{"advanceSeconds": N}` on the virtual clock), `POST /_emulator/outages`
/// (`{"function", "status", "deliveries"}`), `GET /_emulator/jwks` (the local OIDC keys).
public struct LocalCloudRouter: Sendable {
    public let cloud: LocalCloud
    public let maxBodyBytes: Int

    public init(cloud: LocalCloud, maxBodyBytes: Int = 10 << 20) {
        self.cloud = cloud
        self.maxBodyBytes = maxBodyBytes
    }

    /// Serves `request` at the front port.
    public func respond(to request: Request) async -> Response {
        let path = request.uri.path
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if let first = segments.first, cloud.targets[first] != nil {
            return await function(first, request, prefix: "/" + first)
        }
        if request.method == .post, path.hasPrefix(Self.pushPrefix + "/"), let function = segments.dropFirst(2).first,
            cloud.targets[function] != nil
        {
            return await HTTPBridge.respond(to: request, limit: maxBodyBytes, pathPrefix: Self.pushPrefix + "/" + function) {
                await cloud.deliverSignedPush(function, $0)
            }
        }
        if request.method == .get, path.hasPrefix(Self.storagePrefix + "/") {
            return await signedLink(path: String(path.dropFirst(Self.storagePrefix.count)), query: request.uri.query ?? "")
        }
        let started = ContinuousClock.now
        let method = request.method.rawValue
        let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }) { _, last in last }
        var request = request
        let answer: FunctionResponse
        let refusal: String
        do {
            let body = Data(buffer: try await request.collectBody(upTo: maxBodyBytes))
            do {
                return HTTPBridge.response(try await control(method: method, segments: segments, query: query, body: body))
            } catch {
                let error = error as? TollgateError ?? TollgateError(.internal, "\(error)")
                (answer, refusal) = (Self.googleError(error), error.message)
            }
        } catch {
            refusal = "the body is over \(maxBodyBytes) bytes"
            answer = .rejected(413, code: "PAYLOAD_TOO_LARGE", refusal)
        }
        // One line in the live log, as for a delivery: the caller has the error body, the
        // developer watching `serve` sees what was refused and why.
        cloud.log(
            LocalCloud.Delivery(
                time: cloud.clock.now(), function: "local-cloud", trigger: "control", detail: "\(method) \(path)",
                status: answer.status, latency: ContinuousClock.now - started, attempt: 1, outcome: "refused: \(refusal)"))
        return HTTPBridge.response(answer)
    }

    /// Where Google's Pub/Sub emulator pushes (`PREFIX/FUNCTION/PATH`): the push is
    /// signed here and delivered to the function (see ``PubSubEmulatorWiring``).
    public static let pushPrefix = "/_emulator/push"

    /// Where the blob fake's signed links point: `GET /_emulator/storage/local/NAME?X-Goog-…`.
    public static let storagePrefix = "/_emulator/storage"

    /// A signed link of the blob fake, answered as Cloud Storage's XML API answers one:
    /// the object, or `SignatureDoesNotMatch` (403), `ExpiredToken` or `InvalidArgument` (400), `NoSuchKey` (404).
    func signedLink(path: String, query: String) async -> Response {
        let answer: FunctionResponse
        do {
            let object = try await SQLiteBlobStore(cloud.database).open(linkPath: path, query: query, now: cloud.clock.now())
            answer = FunctionResponse(status: 200, headers: ["Content-Type": object.contentType], body: Data(object.data))
        } catch let refusal as SQLiteBlobStore.LinkRefusal {
            let (status, code, message): (Int, String, String) =
                switch refusal {
                case .signatureDoesNotMatch:
                    (403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
                case .expired: (400, "ExpiredToken", "Invalid argument.")
                case .invalidExpiry: (400, "InvalidArgument", "X-Goog-Expires must be between 1 and 604800 seconds.")
                case .noSuchKey: (404, "NoSuchKey", "The specified key does not exist.")
                }
            let xml = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>"
            answer = FunctionResponse(status: status, headers: ["Content-Type": "application/xml; charset=UTF-8"], body: Data(xml.utf8))
        } catch {
            answer = .rejected(500, code: "INTERNAL", "\(error)")
        }
        return HTTPBridge.response(answer)
    }

    /// Serves `request` for one function (its own port with `--ports`, or its path).
    public func function(_ name: String, _ request: Request, prefix: String = "") async -> Response {
        await HTTPBridge.respond(to: request, limit: maxBodyBytes, pathPrefix: prefix) { await cloud.deliverFromOutside(name, $0) }
    }

    func control(method: String, segments: [String], query: [String: String] = [:], body: Data) async throws -> FunctionResponse {
        switch (method, segments) {
        case ("GET", []):
            return .json(200, await index())
        case ("POST", let s) where s.count == 5 && s[0] == "v1" && s[1] == "projects" && s[3] == "topics" && s[4].hasSuffix(":publish"):
            return try await publish(topic: "projects/\(s[2])/topics/\(s[4].dropLast(":publish".count))", body: body)
        case ("PUT", let s) where s.count == 5 && s[0] == "v1" && s[1] == "projects" && s[3] == "topics":
            return .json(200, .object(["name": .string(try await pubsub.createTopic("projects/\(s[2])/topics/\(s[4])"))]))
        case ("GET", let s) where s.count == 5 && s[0] == "v1" && s[1] == "projects" && s[3] == "topics":
            return .json(200, .object(["name": .string(try await pubsub.getTopic("projects/\(s[2])/topics/\(s[4])"))]))
        case ("GET", let s) where s.count == 4 && s[0] == "v1" && s[1] == "projects" && s[3] == "topics":
            return try await listTopics(project: s[2], query: query)
        case ("POST", let s)
        where s.count == 7 && s[0] == "v1" && s[1] == "projects" && s[3] == "locations" && s[5] == "jobs" && s[6].hasSuffix(":run"):
            return try await runJob(String(s[6].dropLast(":run".count)), project: s[2], location: s[4])
        case ("GET", ["_emulator", "clock"]):
            return .json(200, clockState())
        case ("POST", ["_emulator", "clock"]):
            let request = try JSONValue.parse(body)
            guard let seconds = request["advanceSeconds"]?.integerValue else {
                throw TollgateError(.invalidArgument, "the body is {\"advanceSeconds\": N}")
            }
            _ = try await cloud.advance(seconds: seconds)
            return .json(200, clockState())
        case ("POST", ["_emulator", "outages"]):
            let request = try JSONValue.parse(body)
            guard let function = request["function"]?.stringValue, let status = request["status"]?.integerValue else {
                throw TollgateError(.invalidArgument, "the body is {\"function\": NAME, \"status\": 503, \"deliveries\": N}")
            }
            try cloud.outage(function, status: Int(status), deliveries: Int(request["deliveries"]?.integerValue ?? 1))
            return .json(200, .object(["function": .string(function), "status": .integer(status)]))
        case ("GET", ["_emulator", "jwks"]):
            return .json(200, cloud.issuer.jwksDocument)
        case ("POST", ["_emulator", "clerk", "sessions"]):
            return try sessionToken(try JSONValue.parse(body))
        default:
            throw TollgateError(.notFound, "nothing at \(method) /\(segments.joined(separator: "/")); GET / lists what runs here")
        }
    }

    /// A session token of the local Clerk instance, for calling account-api (and
    /// auth-validator) as a signed-in user: `{"user", "organization", "role", "version",
    /// "expiresIn"}` → `{"token", "expiresAt"}`. Only well-formed sessions: the replay's
    /// senders forge the others.
    func sessionToken(_ request: JSONValue) throws -> FunctionResponse {
        guard let clerk = cloud.clerk else { throw TollgateError(.notFound, "this local cloud has no Clerk instance") }
        guard let user = request["user"]?.stringValue, InputBounds.isIdentifier(user) else {
            throw TollgateError(.invalidArgument, "user is a Clerk user id such as user_2abc")
        }
        let expiresIn = request["expiresIn"]?.integerValue ?? 3_600
        guard (1...86_400).contains(expiresIn) else { throw TollgateError(.invalidArgument, "expiresIn is 1 to 86400 seconds") }
        var spec: [String: JSONValue] = ["user": .string(user), "expiresIn": .integer(expiresIn)]
        if let organization = request["organization"]?.stringValue {
            guard InputBounds.isIdentifier(organization) else {
                throw TollgateError(.invalidArgument, "organization is a Clerk organization id such as org_2abc")
            }
            let role = request["role"]?.stringValue ?? "org:member"
            guard role.hasPrefix("org:"), InputBounds.isIdentifier(String(role.dropFirst(4))) else {
                throw TollgateError(.invalidArgument, "role is org:admin, org:member or another org: role")
            }
            let version = request["version"]?.integerValue ?? 2
            guard version == 1 || version == 2 else { throw TollgateError(.invalidArgument, "version is 1 or 2") }
            spec["organization"] = .string(organization)
            spec["role"] = .string(role)
            spec["version"] = .integer(version)
        }
        let now = cloud.clock.now()
        let token = try Senders.sessionToken(.object(spec), clerk: clerk, stranger: nil, now: now)
        return .json(200, .object(["token": .string(token), "expiresAt": .string(now.adding(seconds: expiresIn).rfc3339)]))
    }

    func clockState() -> JSONValue {
        .object(["now": .string(cloud.clock.now().rfc3339), "mode": .string(cloud.clock is VirtualClock ? "virtual" : "wall")])
    }

    func index() async -> JSONValue {
        let functions = EmulatedFunction.declarations.map { declaration -> JSONValue in
            .object([
                "name": .string(declaration.name), "trigger": .string(declaration.trigger.kind.rawValue),
                "path": .string("/\(declaration.name)/"),
            ])
        }
        let jobs = await cloud.schedule().map { job -> JSONValue in
            .object([
                "job": .string(job.job), "function": .string(job.function), "schedule": .string(job.schedule.description),
                "timeZone": .string(job.schedule.timeZone.identifier), "next": .string(job.next.rfc3339),
            ])
        }
        let subscriptions = PushDispatch.declaredSubscriptions().map { subscription -> JSONValue in
            .object([
                "name": .string(subscription.name), "topic": .string(subscription.topic), "endpoint": .string("/" + subscription.endpoint),
                "deadLetterTopic": subscription.deadLetterTopic.map(JSONValue.string) ?? .null,
            ])
        }
        return .object([
            "functions": .array(functions), "jobs": .array(jobs), "subscriptions": .array(subscriptions), "clock": clockState(),
            "state": .string(cloud.database.path),
        ])
    }

    var pubsub: LocalPubSub { LocalPubSub(cloud: cloud) }

    /// Pub/Sub's `topics.list`: `?pageSize=&pageToken=` → `{"topics": [{"name"}], "nextPageToken"}`.
    func listTopics(project: String, query: [String: String]) async throws -> FunctionResponse {
        guard let size = Int(query["pageSize"] ?? "0") else { throw TollgateError(.invalidArgument, "pageSize is not a number") }
        let page = try await pubsub.listTopics(project: "projects/\(project)", pageSize: size, pageToken: query["pageToken"] ?? "")
        var body: [String: JSONValue] = ["topics": .array(page.topics.map { .object(["name": .string($0)]) })]
        if !page.nextPageToken.isEmpty { body["nextPageToken"] = .string(page.nextPageToken) }
        return .json(200, .object(body))
    }

    /// Pub/Sub's `topics.publish`: `{"messages": [{"data": base64, "attributes", "orderingKey"}]}`
    /// → `{"messageIds": [...]}`.
    func publish(topic: String, body: Data) async throws -> FunctionResponse {
        let request = try JSONValue.parse(body)
        guard let messages = request["messages"]?.arrayValue else {
            throw TollgateError(.invalidArgument, "a publish request is {\"messages\": [...]}")
        }
        var outgoing: [OutgoingMessage] = []
        for message in messages {
            var data: [UInt8] = []
            if let text = message["data"]?.stringValue {
                guard let decoded = Data(base64Encoded: text) else { throw TollgateError(.invalidArgument, "data is not base64") }
                data = [UInt8](decoded)
            }
            let attributes = (message["attributes"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            let orderingKey = message["orderingKey"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            outgoing.append(OutgoingMessage(data: data, attributes: attributes, orderingKey: orderingKey))
        }
        let ids = try await pubsub.publish(outgoing, to: topic)
        return .json(200, .object(["messageIds": .array(ids.map(JSONValue.string))]))
    }

    /// Cloud Scheduler's `jobs.run`: answers the job, its last attempt's status included.
    func runJob(_ job: String, project: String, location: String) async throws -> FunctionResponse {
        let response = try await cloud.trigger(job: job)
        guard let entry = await cloud.schedule().first(where: { $0.job == job }) else {
            throw TollgateError(.notFound, "no job \(job)")
        }
        var status: [String: JSONValue] = [:]
        if let code = response?.status, !(200..<300).contains(code) {
            status = ["code": .integer(Int64(Self.rpcCode(httpStatus: code))), "message": .string("HTTP \(code)")]
        } else if response == nil {
            status = ["code": .integer(4), "message": .string("attempt deadline exceeded")]
        }
        return .json(
            200,
            .object([
                "name": .string("projects/\(project)/locations/\(location)/jobs/\(job)"), "schedule": .string(entry.schedule.description),
                "timeZone": .string(entry.schedule.timeZone.identifier), "state": .string("ENABLED"),
                "lastAttemptTime": .string(cloud.clock.now().rfc3339), "scheduleTime": .string(entry.next.rfc3339),
                "status": .object(status),
            ]))
    }

    /// google.rpc.Code for an HTTP status, as Cloud Scheduler reports a target's answer.
    static func rpcCode(httpStatus: Int) -> Int {
        switch httpStatus {
        case 400: 3
        case 401: 16
        case 403: 7
        case 404: 5
        case 409: 10
        case 429: 8
        case 499: 1
        case 501: 12
        case 503: 14
        case 504: 4
        case 500..<600: 13
        default: 2
        }
    }

    /// Google's error body: `{"error": {"code", "message", "status"}}`.
    static func googleError(_ error: TollgateError) -> FunctionResponse {
        let status = error.code.httpStatus
        return .json(
            status,
            .object([
                "error": .object(["code": .integer(Int64(status)), "message": .string(error.message), "status": .string(error.code.name)])
            ]))
    }
}
