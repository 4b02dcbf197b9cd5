import Foundation
import Logging
import TollgateAuth
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateStripe
import TollgateTesting

/// Dead letters on the local state: listed, and replayed through the function that wrote
/// them, wrapped again as their sender wraps a delivery (a fresh OIDC token from the local
/// issuer, Stripe's signature with the local secret, the task's or job's headers). A
/// replay that succeeds removes the letter; one that fails again leaves it as it was.
public enum DeadLetterReplay {
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
    public static func replay(_ id: String, ports: Ports, logger: Logger) async throws -> Outcome {
        let path = try DocumentPath(collection: DeadLetter.collection, id: id)
        guard let letter = try await ports.store.get(path)?.decode(DeadLetter.self) else {
            throw TollgateError(.notFound, "no dead letter \(id)")
        }
        guard letter.metadata["truncatedFrom"] == nil else {
            throw TollgateError(
                .failedPrecondition, "dead letter \(id) kept only the first 900,000 bytes of its body; it cannot be replayed")
        }
        let issuer = try LocalOIDCIssuer()
        let function = try EmulatedFunction.make(
            letter.function, ports: ports, issuer: issuer, clerk: try LocalOIDCIssuer(keyID: "clerk-local-1"), webhookSecrets: ["current"],
            logger: logger)
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
                if let secret = LocalEnvironment.webhookSecrets["current"] {
                    headers.append(
                        ("Stripe-Signature", StripeSigner(secret: secret).header(timestamp: now.secondsSinceEpoch, body: letter.body)))
                }
            case .svix:
                // Signed anew under the message's own svix-id: the id is its dedupe key.
                if let secret = LocalEnvironment.svixSecrets["current"] {
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
