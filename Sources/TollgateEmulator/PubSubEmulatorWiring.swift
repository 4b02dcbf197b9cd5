import Foundation
import TollgateHTTP
import TollgateModel

/// Google's Pub/Sub emulator wired as `deploy/` wires Pub/Sub: every topic the functions
/// touch, and a push subscription per declared trigger or extra subscription, with the
/// declared ack deadline. Pushes go to the local cloud's front (``LocalCloudRouter/pushPrefix``),
/// which signs each with an OIDC token as a subscription's `oidcToken` makes Pub/Sub do:
/// the emulator signs nothing, and the functions accept no unsigned push. The emulator has
/// no dead-letter or retry policy; it redelivers a push answered with an error on its own
/// schedule.
public enum PubSubEmulatorWiring {
    static let client = CurlHTTPClient()

    /// Creates what is missing; what exists is left as it is (`ALREADY_EXISTS`).
    /// - Parameters:
    ///   - host: the emulator's `HOST:PORT` (`PUBSUB_EMULATOR_HOST`).
    ///   - pushBase: the local cloud's front, such as `http://127.0.0.1:8080`.
    public static func declare(host: String, project: String, pushBase: String) async throws {
        let base = "http://\(host)/v1/projects/\(project)"
        for topic in EmulatedFunction.declarations.topics {
            try await put("\(base)/topics/\(topic)", body: .object([:]))
        }
        for subscription in PushDispatch.declaredSubscriptions() {
            let (function, path) = PushDispatch.route(subscription)
            let body: JSONValue = .object([
                "topic": .string("projects/\(project)/topics/\(subscription.topic)"),
                "ackDeadlineSeconds": .integer(Int64(subscription.ackDeadlineSeconds)),
                "pushConfig": .object(["pushEndpoint": .string(pushBase + LocalCloudRouter.pushPrefix + "/" + function + path)]),
            ])
            try await put("\(base)/subscriptions/\(subscription.name)", body: body)
        }
    }

    static func put(_ url: String, body: JSONValue) async throws {
        let response = try await client.send(
            HTTPRequest(
                method: "PUT", url: url, headers: [("Content-Type", "application/json")], body: Array(body.rendered().utf8),
                timeout: .seconds(10)))
        guard (200..<300).contains(response.status) || response.status == 409 else {
            throw TollgateError(
                .unavailable,
                "the Pub/Sub emulator refused PUT \(url): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
    }
}
