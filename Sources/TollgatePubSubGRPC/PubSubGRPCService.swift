import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SwiftProtobuf
import TollgateEmulator
import TollgateModel

/// Pub/Sub's gRPC `google.pubsub.v1.Publisher` for Google's client libraries, which speak
/// gRPC (plaintext HTTP/2) to `PUBSUB_EMULATOR_HOST`. Every call goes through
/// ``LocalPubSub``, the rules the REST front follows too; errors carry the gRPC status
/// Pub/Sub answers with (`NOT_FOUND` for an unknown topic, `ALREADY_EXISTS`,
/// `INVALID_ARGUMENT`), which the client libraries map to their own exceptions.
struct PublisherService: Google_Pubsub_V1_Publisher.SimpleServiceProtocol {
    let pubsub: LocalPubSub

    func createTopic(request: Google_Pubsub_V1_Topic, context: ServerContext) async throws -> Google_Pubsub_V1_Topic {
        try await answering("CreateTopic \(request.name)") {
            var topic = request
            topic.name = try await pubsub.createTopic(request.name)
            return topic
        }
    }

    func publish(request: Google_Pubsub_V1_PublishRequest, context: ServerContext) async throws -> Google_Pubsub_V1_PublishResponse {
        try await answering("Publish \(request.topic) (\(request.messages.count) messages)") {
            let messages = request.messages.map { message in
                OutgoingMessage(
                    data: [UInt8](message.data), attributes: message.attributes,
                    orderingKey: message.orderingKey.isEmpty ? nil : message.orderingKey)
            }
            let ids = try await pubsub.publish(messages, to: request.topic)
            return Google_Pubsub_V1_PublishResponse.with { $0.messageIds = ids }
        }
    }

    func getTopic(request: Google_Pubsub_V1_GetTopicRequest, context: ServerContext) async throws -> Google_Pubsub_V1_Topic {
        try await answering("GetTopic \(request.topic)") {
            let name = try await pubsub.getTopic(request.topic)
            return Google_Pubsub_V1_Topic.with { $0.name = name }
        }
    }

    func listTopics(request: Google_Pubsub_V1_ListTopicsRequest, context: ServerContext) async throws
        -> Google_Pubsub_V1_ListTopicsResponse
    {
        try await answering("ListTopics \(request.project)") {
            let page = try await pubsub.listTopics(
                project: request.project, pageSize: Int(request.pageSize), pageToken: request.pageToken)
            return Google_Pubsub_V1_ListTopicsResponse.with {
                $0.topics = page.topics.map { name in Google_Pubsub_V1_Topic.with { $0.name = name } }
                $0.nextPageToken = page.nextPageToken
            }
        }
    }

    /// Runs a call, turning a refusal into the gRPC status Pub/Sub answers with, logged once.
    func answering<Response: Sendable>(_ call: String, _ body: () async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            return try await body()
        } catch {
            let error = error as? TollgateError ?? TollgateError(.internal, "\(error)")
            pubsub.logRefusal(front: "grpc", call: call, error, started: started)
            throw RPCError(code: Self.status(error.code), message: error.message)
        }
    }

    /// The gRPC status for a Tollgate error code (they share the names).
    static func status(_ code: TollgateError.Code) -> RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .aborted: .aborted
        case .unavailable: .unavailable
        case .resourceExhausted: .resourceExhausted
        case .unauthenticated: .unauthenticated
        case .permissionDenied: .permissionDenied
        case .deadlineExceeded: .deadlineExceeded
        default: .internalError
        }
    }
}

/// The gRPC front of `tollgate serve`: the Publisher service on its own port (gRPC needs
/// HTTP/2; the REST front is HTTP/1.1), plaintext, as Google's emulator serves it.
public struct PubSubGRPCServer: Sendable {
    let server: GRPCServer<HTTP2ServerTransport.Posix>

    /// - Parameters:
    ///   - port: 0 picks a free one (``listeningPort()`` tells which).
    public init(pubsub: LocalPubSub, host: String, port: Int) {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        // Pub/Sub accepts publish requests up to 10 MB; gRPC's default limit is 4 MiB.
        config.rpc.maxRequestPayloadSize = 10 << 20
        let host = host == "localhost" ? "127.0.0.1" : host
        let transport = HTTP2ServerTransport.Posix(
            address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port), transportSecurity: .plaintext,
            config: config)
        server = GRPCServer(transport: transport, services: [PublisherService(pubsub: pubsub)])
    }

    /// Serves until ``stop()``.
    public func serve() async throws { try await server.serve() }

    /// The port once bound.
    public func listeningPort() async throws -> Int {
        let address = try await server.transport.listeningAddress
        guard let port = address.ipv4?.port ?? address.ipv6?.port else {
            throw TollgateError(.internal, "the gRPC front is bound to \(address), not an IP address")
        }
        return port
    }

    /// Stops accepting calls, lets those under way finish, then ``serve()`` returns.
    public func stop() { server.beginGracefulShutdown() }
}
