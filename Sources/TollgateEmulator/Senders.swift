import Crypto
import Foundation
import Synchronization
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTesting

/// Wraps a fixture's payload as its real sender would: Stripe signs it; Pub/Sub wraps it
/// in a push envelope (or a CloudEvent) with an OIDC token; Cloud Tasks and Cloud
/// Scheduler add their headers and token.
struct Senders {
    let issuer: LocalOIDCIssuer
    let clock: any TollgateModel.Clock
    let fixtureDirectory: URL
    let function: FunctionDeclaration
    /// The emulator's Clerk instance, and the keys the fixture's seeds made (by ref).
    var clerk: LocalOIDCIssuer? = nil
    /// Another key under the Clerk key's id: what a forger signs with.
    var stranger: LocalOIDCIssuer? = nil
    var keys: [String: String] = [:]
    /// Reuse tokens as Google's senders do (the local cloud); nil mints one per request.
    var tokens: IDTokenCache? = nil

    /// An ID token for `audience`, from the cache when there is one.
    func idToken(audience: String, email: String = LocalOIDCIssuer.serviceAccount) throws -> String {
        if let tokens { return try tokens.token(issuer: issuer, audience: audience, email: email, now: clock.now()) }
        return try issuer.token(audience: audience, email: email, issuedAt: clock.now())
    }

    func request(for send: JSONValue, delivery: Int) throws -> FunctionRequest {
        guard let (kind, spec) = send.objectValue?.first else { throw TollgateError(.invalidArgument, "empty send") }
        switch kind {
        case "stripe": return try stripe(spec)
        case "clerk": return try clerk(spec)
        case "pubsub": return try pubSub(spec, delivery: delivery)
        case "task": return try task(spec, delivery: delivery)
        case "scheduler": return try scheduler(spec)
        case "http": return try http(spec)
        case "validate": return try validate(spec)
        default:
            throw TollgateError(.invalidArgument, "unknown sender \(kind); use stripe, clerk, pubsub, task, scheduler, http or validate")
        }
    }

    /// The body: `file` (bytes exactly as stored), `raw` (a string, for malformed input)
    /// or `event`/`data` (JSON, rendered as Stripe and Google render it: indented).
    private func body(_ spec: JSONValue, jsonKey: String) throws -> Data {
        var body: Data
        if let file = spec["file"]?.stringValue {
            let url = fixtureDirectory.appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw TollgateError(.notFound, "cannot read payload \(file) (from \(fixtureDirectory.lastPathComponent)/)")
            }
            body = data
        } else if let raw = spec["raw"]?.stringValue {
            body = Data(raw.utf8)
        } else if let json = spec[jsonKey] {
            body = Data(json.rendered(pretty: true).utf8)
        } else {
            body = Data()
        }
        // Oversize bodies for limit tests: valid JSON padded with trailing white space.
        if let size = spec["padTo"]?.integerValue, Int(size) > body.count {
            body.append(Data(repeating: 0x20, count: Int(size) - body.count))
        }
        return body
    }

    private func stripe(_ spec: JSONValue) throws -> FunctionRequest {
        var body = try body(spec, jsonKey: "event")
        if let reference = spec["clientReference"] { body = try withCheckoutReference(reference, in: body) }
        let signedAt = clock.now().secondsSinceEpoch + (spec["signedAt"]?.integerValue ?? 0)
        let secretName = spec["secret"]?.stringValue ?? "current"
        guard let secret = LocalEnvironment.webhookSecrets[secretName] else {
            throw TollgateError(.invalidArgument, "no local webhook secret named \(secretName)")
        }
        let signer = StripeSigner(secret: secret)
        var header: String?
        switch spec["signature"]?.stringValue ?? "valid" {
        case "valid": header = signer.header(timestamp: signedAt, body: body)
        case "none": header = nil
        case "malformed": header = "v1=\(signer.signature(timestamp: signedAt, body: body))"
        case "v0-only": header = "t=\(signedAt),v0=\(signer.signature(timestamp: signedAt, body: body))"
        case "extra-v1":
            // A stale signature first, the good one second: any matching v1 is accepted.
            header = "t=\(signedAt),v1=\(String(repeating: "0", count: 64)),v1=\(signer.signature(timestamp: signedAt, body: body))"
        case "tampered":
            header = signer.header(timestamp: signedAt, body: body)
            if let index = body.firstIndex(of: UInt8(ascii: "1")) { body[index] = UInt8(ascii: "2") }
        case let other: throw TollgateError(.invalidArgument, "unknown signature mode \(other)")
        }
        var headers = [
            (name: "Content-Type", value: "application/json; charset=utf-8"),
            (name: "User-Agent", value: "Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
        ]
        if let header { headers.append((name: "Stripe-Signature", value: header)) }
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: body)
    }

    /// A Checkout Session event whose `client_reference_id` is the reference account-api
    /// minted in an earlier step (`ref`), or one it would mint for `account`: under the local secret (`secret` names another, such as
    /// `unrelated` for a forgery), good for its lifetime from the session's `created` (or
    /// `expiresIn` seconds from it), its nonce drawn from the event id so every redelivery
    /// carries the same body.
    private func withCheckoutReference(_ spec: JSONValue, in body: Data) throws -> Data {
        guard var event = try JSONValue.parse(body).objectValue, var data = event["data"]?.objectValue,
            var session = data["object"]?.objectValue, let created = session["created"]?.integerValue
        else { throw TollgateError(.invalidArgument, "clientReference wants a Checkout Session event with created") }
        func replaced(by reference: String) -> Data {
            session["client_reference_id"] = .string(reference)
            data["object"] = .object(session)
            event["data"] = .object(data)
            return Data(JSONValue.object(event).rendered(pretty: true).utf8)
        }
        // One account-api minted in an earlier step (`http.referenceAs`).
        if let ref = spec["ref"]?.stringValue {
            guard let reference = keys[ref] else { throw TollgateError(.invalidArgument, "no reference \(ref) was minted before") }
            return replaced(by: reference)
        }
        guard let account = spec["account"]?.stringValue else {
            throw TollgateError(.invalidArgument, "clientReference wants {\"account\": …} or {\"ref\": …}")
        }
        let secretName = spec["secret"]?.stringValue ?? "current"
        guard let secret = LocalEnvironment.checkoutSecrets[secretName] else {
            throw TollgateError(.invalidArgument, "no local checkout secret named \(secretName)")
        }
        let signer = try CheckoutReferenceSigner(secrets: [secret])
        let lifetime = spec["expiresIn"]?.integerValue ?? CheckoutReference.lifetimeSeconds
        let nonce = Hex.encode(SHA256.hash(data: Data((event["id"]?.stringValue ?? "").utf8)).prefix(8))
        let reference = CheckoutReference(
            accountId: account, expires: Timestamp(secondsSinceEpoch: created + lifetime), nonce: nonce)
        return replaced(by: signer.text(of: reference))
    }

    /// Clerk's webhook as Svix delivers it: `svix-id` (the fixture's `id`, else one derived
    /// from the body, the same on every retry as Svix keeps it), `svix-timestamp`,
    /// `svix-signature`. `signature` `none`, `tampered`, `malformed`, `no-v1`, `extra-v1`,
    /// `missing-id`, `missing-timestamp` or `unbranded` (the `webhook-` headers); `secret`
    /// and `signedAt` as for Stripe.
    private func clerk(_ spec: JSONValue) throws -> FunctionRequest {
        var body = try body(spec, jsonKey: "event")
        let signedAt = clock.now().secondsSinceEpoch + (spec["signedAt"]?.integerValue ?? 0)
        let secretName = spec["secret"]?.stringValue ?? "current"
        guard let secret = LocalEnvironment.svixSecrets[secretName] else {
            throw TollgateError(.invalidArgument, "no local Svix secret named \(secretName)")
        }
        let id = spec["id"]?.stringValue ?? "msg_" + Hex.encode(SHA256.hash(data: body).prefix(12))
        let signer = try SvixSigner(secret: secret)
        var headers = signer.headers(id: id, timestamp: signedAt, body: body)
        let signature = signer.signature(id: id, timestamp: signedAt, body: body)
        switch spec["signature"]?.stringValue ?? "valid" {
        case "valid": break
        case "none": headers.removeAll { $0.name == "svix-signature" }
        case "missing-id": headers.removeAll { $0.name == "svix-id" }
        case "missing-timestamp": headers.removeAll { $0.name == "svix-timestamp" }
        case "malformed": headers[2].value = "v1=" + signature.dropFirst(3)
        case "no-v1": headers[2].value = "v2," + signature.dropFirst(3)
        case "extra-v1":
            // A stale signature first, the good one second: any matching v1 is accepted.
            headers[2].value = "v1,\(Data(count: 32).base64EncodedString()) \(signature)"
        case "unbranded": headers = headers.map { (name: "webhook-" + $0.name.dropFirst(5), value: $0.value) }
        case "tampered":
            if let index = body.firstIndex(of: UInt8(ascii: "1")) { body[index] = UInt8(ascii: "2") }
        case let other: throw TollgateError(.invalidArgument, "unknown signature mode \(other)")
        }
        headers.insert((name: "Content-Type", value: "application/json"), at: 0)
        headers.append((name: "User-Agent", value: "Svix-Webhooks/1.0 (sender-tollgate; +https://www.svix.com/http-sender/)"))
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: body)
    }

    private func bearer(_ spec: JSONValue) throws -> (name: String, value: String) {
        let audience = spec["audience"]?.stringValue ?? LocalEnvironment.url(of: function.name)
        let token = try idToken(audience: audience, email: spec["invoker"]?.stringValue ?? LocalOIDCIssuer.serviceAccount)
        return (name: "Authorization", value: "Bearer \(token)")
    }

    private func pubSub(_ spec: JSONValue, delivery: Int) throws -> FunctionRequest {
        guard case .pubSub(let topic, _, _) = function.trigger else {
            throw TollgateError(.invalidArgument, "\(function.name) is not triggered by Pub/Sub")
        }
        let data = try body(spec, jsonKey: "data")
        let message = PubSubMessage(
            data: data, attributes: (spec["attributes"]?.objectValue ?? [:]).compactMapValues(\.stringValue),
            messageId: spec["messageId"]?.stringValue ?? "\(1_000_000 + delivery)", publishTime: clock.now(),
            orderingKey: spec["orderingKey"]?.stringValue)
        let envelope = PubSubPushEnvelope(
            message: message, subscription: "projects/tollgate-local/subscriptions/\(function.name)-\(topic)",
            deliveryAttempt: spec["deliveryAttempt"]?.integerValue.map(Int.init))
        let envelopeJSON = try Self.encoder.encode(envelope)
        var headers = [try bearer(spec)]
        switch spec["mode"]?.stringValue ?? "push" {
        case "push":
            headers.append((name: "Content-Type", value: "application/json"))
            return FunctionRequest(method: "POST", path: "/", headers: headers, body: envelopeJSON)
        case "cloudevent-binary":
            headers += [
                (name: "Content-Type", value: "application/json"), (name: "ce-id", value: message.messageId),
                (name: "ce-source", value: "//pubsub.googleapis.com/projects/tollgate-local/topics/\(topic)"),
                (name: "ce-type", value: CloudEvent.pubSubMessagePublished), (name: "ce-specversion", value: "1.0"),
                (name: "ce-time", value: message.publishTime.rfc3339),
            ]
            return FunctionRequest(method: "POST", path: "/", headers: headers, body: envelopeJSON)
        case "cloudevent-structured":
            let event: JSONValue = .object([
                "specversion": .string("1.0"), "id": .string(message.messageId),
                "source": .string("//pubsub.googleapis.com/projects/tollgate-local/topics/\(topic)"),
                "type": .string(CloudEvent.pubSubMessagePublished), "time": .string(message.publishTime.rfc3339),
                "datacontenttype": .string("application/json"), "data": try JSONValue.parse(envelopeJSON),
            ])
            headers.append((name: "Content-Type", value: "application/cloudevents+json"))
            return FunctionRequest(method: "POST", path: "/", headers: headers, body: Data(event.rendered().utf8))
        case let other: throw TollgateError(.invalidArgument, "unknown Pub/Sub mode \(other)")
        }
    }

    private func task(_ spec: JSONValue, delivery: Int) throws -> FunctionRequest {
        guard case .cloudTasks(let queue, _, _) = function.trigger else {
            throw TollgateError(.invalidArgument, "\(function.name) is not triggered by Cloud Tasks")
        }
        let retry = Int(spec["retryCount"]?.integerValue ?? 0)
        let metadata = CloudTasksRequest(
            queueName: queue, taskName: spec["name"]?.stringValue ?? "task-\(delivery)", retryCount: retry, executionCount: retry,
            eta: Double(clock.now().secondsSinceEpoch), previousResponse: retry > 0 ? 503 : nil)
        let headers =
            [try bearer(spec), (name: "Content-Type", value: "application/json")] + metadata.headers.map { (name: $0.key, value: $0.value) }
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: try body(spec, jsonKey: "body"))
    }

    /// An attempt of a queued task, as Cloud Tasks dispatches it: the task's headers and
    /// body, the `X-CloudTasks-*` set for this attempt, an OIDC token for its URL.
    func queued(_ queued: SQLiteTaskQueue.QueuedTask) throws -> FunctionRequest {
        let metadata = CloudTasksRequest(
            queueName: queued.queue, taskName: queued.task.name ?? "", retryCount: queued.retries, executionCount: queued.responses,
            eta: Double(queued.task.scheduleTime?.secondsSinceEpoch ?? clock.now().secondsSinceEpoch), previousResponse: queued.lastStatus,
            retryReason: queued.lastStatus.map { $0 == 429 || $0 == 503 ? "UNAVAILABLE" : "HTTP_ERROR" })
        let token = try idToken(audience: queued.task.url)
        let headers =
            [(name: "Authorization", value: "Bearer \(token)")]
            + queued.task.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
            + metadata.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: Data(queued.task.body))
    }

    private func scheduler(_ spec: JSONValue) throws -> FunctionRequest {
        guard case .scheduler = function.trigger else {
            throw TollgateError(.invalidArgument, "\(function.name) is not triggered by Cloud Scheduler")
        }
        return try job(scheduleTime: clock.now(), body: try body(spec, jsonKey: "body"), bearer: try bearer(spec))
    }

    /// A run of the function's Cloud Scheduler job, as the scheduler sends it.
    func job(scheduleTime: Timestamp, body: Data = Data(), bearer: (name: String, value: String)? = nil) throws -> FunctionRequest {
        guard case .scheduler(let job, _, _) = function.trigger else {
            throw TollgateError(.invalidArgument, "\(function.name) is not triggered by Cloud Scheduler")
        }
        let run = CloudSchedulerRequest(jobName: job, scheduleTime: scheduleTime)
        let headers =
            [try bearer ?? self.bearer(.object([:])), (name: "User-Agent", value: "Google-Cloud-Scheduler")]
            + run.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: body)
    }

    /// A gateway's question to auth-validator: a credential (a seeded key by `key` ref, a
    /// malformed `keyText`, or a Clerk `session`), `cost`, `endpoint`, `feature`.
    private func validate(_ spec: JSONValue) throws -> FunctionRequest {
        var credential: String?
        if let ref = spec["key"]?.stringValue {
            guard let key = keys[ref] else { throw TollgateError(.invalidArgument, "no seeded key \(ref)") }
            credential = key
        } else if let text = spec["keyText"]?.stringValue {
            credential = text
        } else if let session = spec["session"] {
            credential = try sessionToken(session)
        }
        var headers: [(name: String, value: String)] = []
        if let credential {
            if spec["via"]?.stringValue == "bearer" || spec["session"] != nil {
                headers.append((name: "Authorization", value: "Bearer \(credential)"))
            } else {
                headers.append((name: "X-API-Key", value: credential))
            }
        }
        if let cost = spec["cost"] {
            headers.append((name: "X-Tollgate-Cost", value: cost.integerValue.map(String.init) ?? cost.stringValue ?? ""))
        }
        if let endpoint = spec["endpoint"]?.stringValue { headers.append((name: "X-Original-URI", value: endpoint)) }
        if let feature = spec["feature"]?.stringValue { headers.append((name: "X-Tollgate-Feature", value: feature)) }
        return FunctionRequest(method: "POST", path: "/", headers: headers, body: Data())
    }

    /// A Clerk session token made now; `signer` `stranger`, `hmac-public-key` or `none`
    /// forges one the ways attackers do.
    private func sessionToken(_ spec: JSONValue) throws -> String {
        guard let clerk else { throw TollgateError(.invalidArgument, "no local Clerk instance") }
        return try Self.sessionToken(spec, clerk: clerk, stranger: stranger, now: clock.now())
    }

    /// A Clerk session token as `spec` describes it (see ``sessionToken(_:)``), signed by
    /// `clerk`: for the replay's senders and for `tollgate session` against `serve`.
    static func sessionToken(_ spec: JSONValue, clerk: LocalOIDCIssuer, stranger: LocalOIDCIssuer?, now time: Timestamp) throws
        -> String
    {
        let now = time.secondsSinceEpoch
        let user = spec["user"]?.stringValue ?? "user_local"
        var claims: [String: JSONValue] = [
            "sub": .string(user), "sid": .string("sess_\(user)"),
            "iss": .string(spec["issuer"]?.stringValue ?? LocalEnvironment.clerkIssuer),
            "exp": .integer(now + (spec["expiresIn"]?.integerValue ?? 60)), "nbf": .integer(now + (spec["notBefore"]?.integerValue ?? -10)),
            "iat": .integer(now + (spec["issuedAt"]?.integerValue ?? 0)), "v": .integer(2),
        ]
        if spec["azp"] != .null { claims["azp"] = .string(spec["azp"]?.stringValue ?? LocalEnvironment.clerkAuthorizedParty) }
        // `organization` and `role` (`org:admin`) make the session act for an organization,
        // in the claims of `version` 2 (`o: {id, rol}`, the default) or 1 (`org_id`, `org_role`).
        if let organization = spec["organization"]?.stringValue {
            let role = spec["role"]?.stringValue ?? "org:member"
            if spec["version"]?.integerValue == 1 {
                claims["v"] = nil
                claims["org_id"] = .string(organization)
                claims["org_role"] = .string(role)
                claims["org_slug"] = .string("local-organization")
                claims["org_permissions"] = .array([])
            } else {
                let short = role.hasPrefix("org:") ? String(role.dropFirst(4)) : role
                claims["o"] = .object([
                    "id": .string(organization), "rol": .string(short), "slg": .string("local-organization"), "per": .string(""),
                    "fpm": .string(""),
                ])
            }
        }
        let algorithm = spec["alg"]?.stringValue ?? "RS256"
        let header: JSONValue = .object([
            "alg": .string(algorithm), "typ": .string("JWT"), "kid": .string(spec["kid"]?.stringValue ?? clerk.keyID),
        ])
        switch spec["signer"]?.stringValue ?? "clerk" {
        case "clerk": return try clerk.sign(header: header, claims: .object(claims))
        case "stranger":
            guard let stranger else { throw TollgateError(.invalidArgument, "no stranger key to forge with") }
            return try stranger.sign(header: header, claims: .object(claims))
        case "none":
            let none: JSONValue = .object(["alg": .string("none"), "typ": .string("JWT")])
            return Base64URL.encode(Data(none.rendered().utf8)) + "." + Base64URL.encode(Data(JSONValue.object(claims).rendered().utf8))
                + "."
        case "hmac-public-key":
            // The classic confusion attack: HS256 keyed with the verifier's public key.
            let hs: JSONValue = .object(["alg": .string("HS256"), "typ": .string("JWT"), "kid": .string(clerk.keyID)])
            let input = Base64URL.encode(Data(hs.rendered().utf8)) + "." + Base64URL.encode(Data(JSONValue.object(claims).rendered().utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(clerk.publicKeyPEM.utf8)))
            return input + "." + Base64URL.encode(Data(mac))
        case let other: throw TollgateError(.invalidArgument, "unknown session signer \(other)")
        }
    }

    /// A push of a published message to a subscriber, as Pub/Sub delivers it.
    func push(
        _ message: PubSubMessage, topic: String, to subscriber: FunctionDeclaration, path: String, deliveryAttempt: Int? = 1
    ) throws -> FunctionRequest {
        let envelope = PubSubPushEnvelope(
            message: message,
            subscription: "projects/\(LocalCloudNames.project)/subscriptions/\(PushDispatch.subscriptionName(subscriber.name, topic))",
            deliveryAttempt: deliveryAttempt)
        let token = try idToken(audience: LocalEnvironment.url(of: subscriber.name))
        return FunctionRequest(
            method: "POST", path: path,
            headers: [(name: "Authorization", value: "Bearer \(token)"), (name: "Content-Type", value: "application/json")],
            body: try Self.encoder.encode(envelope))
    }

    /// Sorted keys: the same message is the same bytes in every replay.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// A plain request: `method`, `path`, `headers`, a body, and with `session` a Clerk
    /// session token (made as `validate` makes one) as `Authorization: Bearer`, as a
    /// dashboard sends it to account-api.
    private func http(_ spec: JSONValue) throws -> FunctionRequest {
        var headers = try (spec["headers"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.compactMap { key, value in
            try value.stringValue.map { (name: key, value: try withKeys($0)) }
        }
        if let session = spec["session"] { headers.append((name: "Authorization", value: "Bearer \(try sessionToken(session))")) }
        return FunctionRequest(
            method: spec["method"]?.stringValue ?? "POST", path: try withKeys(spec["path"]?.stringValue ?? "/"), headers: headers,
            body: try body(spec, jsonKey: "body"))
    }

    /// `text` with each `{key:REF}` replaced by the key made under that ref: a fixture names
    /// keys, never holds one.
    private func withKeys(_ text: String) throws -> String {
        guard text.contains("{key:") else { return text }
        var result = text
        while let open = result.range(of: "{key:"), let close = result[open.upperBound...].firstIndex(of: "}") {
            let ref = String(result[open.upperBound..<close])
            guard let key = keys[ref] else { throw TollgateError(.invalidArgument, "no key with ref \(ref)") }
            result.replaceSubrange(open.lowerBound...close, with: key)
        }
        return result
    }
}

/// ID tokens reused until five minutes before they expire, as Google's metadata server
/// hands the same token to Pub/Sub, Scheduler and Tasks for its hour: signing one per
/// delivery was the local cloud's largest cost when a month runs on the virtual clock.
final class IDTokenCache: Sendable {
    private let tokens = Mutex<[String: (token: String, issued: Timestamp)]>([:])

    func token(issuer: LocalOIDCIssuer, audience: String, email: String, now: Timestamp) throws -> String {
        let key = audience + " " + email
        if let cached = tokens.withLock({ $0[key] }), cached.issued <= now,
            now.secondsSinceEpoch < cached.issued.secondsSinceEpoch + 3_600 - 300
        {
            return cached.token
        }
        let made = try issuer.token(audience: audience, email: email, issuedAt: now)
        tokens.withLock { $0[key] = (made, now) }
        return made
    }
}
