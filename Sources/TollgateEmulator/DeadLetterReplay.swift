import Foundation
import Logging
import TollgateAuth
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateStripe
import TollgateTesting

/// Dead letters on any store: listed, shown, and replayed through the function that wrote
/// them, in this process, wrapped again as their sender wraps a delivery (a fresh OIDC
/// token, the webhook's signature, the task's or job's headers). A replay that succeeds
/// removes the letter; one that fails again leaves it as it was.
public enum DeadLetterReplay {
    /// Whose settings and secrets the function is rebuilt with.
    public enum Settings: Sendable {
        /// The emulator's stand-ins: for local state.
        case local
        /// The function's own service environment, as the operator's shell holds it (its
        /// settings and secrets, `sm://` references resolved as at start-up): for a
        /// production store. Only the OIDC check is pointed at a key of this process's,
        /// since the letter is handed over in process, not through Google's front.
        case service(Environment)
    }

    public struct Entry: Sendable {
        public let id: String
        public let letter: DeadLetter
    }

    public enum Outcome: Sendable, Equatable {
        /// Handled: the letter is gone.
        case resolved(status: Int)
        /// Still poison, or refused: the letter stays.
        case failed(status: Int, reason: String)
    }

    public static func list(_ store: any DocumentStore) async throws -> [Entry] {
        try await store.query(DocumentQuery(collection: DeadLetter.collection).order(by: "received")).map {
            Entry(id: $0.path.id, letter: try $0.decode(DeadLetter.self))
        }
    }

    /// - Throws: `NOT_FOUND` for an unknown id.
    public static func letter(_ id: String, in store: any DocumentStore) async throws -> DeadLetter {
        guard let letter = try await store.get(try DocumentPath(collection: DeadLetter.collection, id: id))?.decode(DeadLetter.self) else {
            throw TollgateError(.notFound, "no dead letter \(id)")
        }
        return letter
    }

    /// - Throws: `NOT_FOUND` for an unknown id; ``ConfigurationError`` when `settings`
    ///   lack what the function needs to start.
    public static func replay(_ id: String, ports: Ports, settings: Settings = .local, logger: Logger) async throws -> Outcome {
        let path = try DocumentPath(collection: DeadLetter.collection, id: id)
        let letter = try await letter(id, in: ports.store)
        guard letter.metadata["truncatedFrom"] == nil else {
            throw TollgateError(
                .failedPrecondition, "dead letter \(id) kept only the first 900,000 bytes of its body; it cannot be replayed")
        }
        let issuer = try LocalOIDCIssuer()
        let function: EmulatedFunction
        let stripeSecret: String?
        let svixSecret: String?
        switch settings {
        case .local:
            function = try EmulatedFunction.make(
                letter.function, ports: ports, issuer: issuer, clerk: try LocalOIDCIssuer(keyID: "clerk-local-1"),
                webhookSecrets: ["current"], logger: logger)
            (stripeSecret, svixSecret) = (LocalEnvironment.webhookSecrets["current"], LocalEnvironment.svixSecrets["current"])
        case .service(let environment):
            let declaration = try EmulatedFunction.type(named: letter.function).declaration
            let resolved = try await Environment.resolvingSecrets(of: declaration, in: environment)
            function = try EmulatedFunction.make(
                letter.function, serviceEnvironment: resolved, ports: ports, issuer: issuer, logger: logger)
            // The first of a secret's values is the one its sender signs with now.
            let current = { (name: String) in resolved.values[name]?.split(separator: ",").first.map(String.init) }
            let signing: String? =
                switch declaration.webhookSignature {
                case .stripe(let name), .svix(let name): current(name)
                case nil: nil
                }
            (stripeSecret, svixSecret) = (signing, signing)
        }
        let now = ports.clock.now()
        var headers = letter.metadata.compactMap { key, value -> (name: String, value: String)? in
            key.hasPrefix("header:") ? (String(key.dropFirst("header:".count)), value) : nil
        }
        let bearer = {
            ("Authorization", "Bearer " + (try issuer.token(audience: LocalEnvironment.url(of: letter.function), issuedAt: now)))
        }
        switch function.declaration.trigger {
        case .http:
            switch function.declaration.webhookSignature {
            case .stripe:
                if let secret = stripeSecret {
                    headers.append(
                        ("Stripe-Signature", StripeSigner(secret: secret).header(timestamp: now.secondsSinceEpoch, body: letter.body)))
                }
            case .svix:
                // Signed anew under the message's own svix-id: the id is its dedupe key.
                if let secret = svixSecret {
                    let messageId = letter.metadata["header:svix-id"] ?? "msg_replay_\(id)"
                    headers = headers.filter { $0.name != "svix-id" }
                    headers += try SvixSigner(secret: secret).headers(id: messageId, timestamp: now.secondsSinceEpoch, body: letter.body)
                }
            case nil: break
            }
        case .pubSub:
            headers.append(try bearer())
        case .cloudTasks(let queue, _, _):
            let task = CloudTasksRequest(
                queueName: queue, taskName: letter.metadata["header:X-CloudTasks-TaskName"] ?? "replay-\(id)", retryCount: 0,
                executionCount: 0, eta: Double(now.secondsSinceEpoch))
            headers = headers.filter { !$0.name.hasPrefix("X-CloudTasks-") } + task.headers.map { ($0.key, $0.value) }
            headers.append(try bearer())
        case .scheduler(let job, _, _):
            headers =
                headers.filter { !$0.name.hasPrefix("X-CloudScheduler") }
                + CloudSchedulerRequest(jobName: job, scheduleTime: now).headers.map { ($0.key, $0.value) }
            headers.append(try bearer())
        }
        let response = await function.deliver(FunctionRequest(method: "POST", path: "/", headers: headers, body: letter.body))
        let answer = try? JSONValue.parse(response.body)
        guard (200..<300).contains(response.status), answer?["deadLetter"] == nil else {
            let reason =
                answer?["error"]?["message"]?.stringValue ?? (answer?["deadLetter"] != nil ? "still poison" : "status \(response.status)")
            return .failed(status: response.status, reason: reason)
        }
        try await ports.store.delete(path)
        return .resolved(status: response.status)
    }
}
