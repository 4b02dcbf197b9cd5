import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import TollgateJOSE
import TollgateModel

/// Serves one function on `$PORT`, as Cloud Run runs a container: HTTP/1.1, a body
/// limit (413 beyond), a connection idle for ``HTTPBridge/idleTimeout`` closed, a body
/// not sent whole within ``HTTPBridge/bodyTimeout`` answered 408, and on SIGTERM: stop
/// accepting, drain in-flight requests, exit well inside Cloud Run's 10 seconds. With a
/// metrics port, `GET /metrics` is served there, on 127.0.0.1 alone.
public struct FunctionServer<Handler: FunctionHandler>: Service {
    public let host: FunctionHost<Handler>
    let port: Int
    let address: String
    let metricsPort: Int?
    let logger: Logger
    let onRunning: @Sendable (Int) async -> Void
    let onMetricsRunning: @Sendable (Int) async -> Void

    public init(
        host: FunctionHost<Handler>, port: Int, address: String = "0.0.0.0", metricsPort: Int? = nil, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }, onMetricsRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.address = address
        self.metricsPort = metricsPort
        self.logger = logger
        self.onRunning = onRunning
        self.onMetricsRunning = onMetricsRunning
    }

    public func run() async throws {
        let host = self.host
        let limit = host.maxBodyBytes
        let responder = CallbackResponder<BasicRequestContext> { request, _ in
            await Self.respond(to: request, host: host, limit: limit)
        }
        let onRunning = self.onRunning
        let app = Application(
            responder: responder, server: HTTPBridge.server,
            configuration: .init(address: .hostname(address, port: port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
        guard let metricsPort else {
            try await app.run()
            await host.handler.drained()
            return
        }
        let onMetricsRunning = self.onMetricsRunning
        let metrics = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in
                await HTTPBridge.respond(to: request, limit: 1_024) { host.metricsResponse($0) }
            },
            server: HTTPBridge.server, configuration: .init(address: .hostname("127.0.0.1", port: metricsPort), serverName: nil),
            onServerRunning: { channel in await onMetricsRunning(channel.localAddress?.port ?? 0) }, logger: logger)
        // Both stop together: the group's graceful shutdown reaches each child task.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await app.run()
                await host.handler.drained()
            }
            group.addTask { try await metrics.run() }
        }
    }

    static func respond(to request: Request, host: FunctionHost<Handler>, limit: Int) async -> Response {
        await HTTPBridge.respond(to: request, limit: limit) { await host.handle($0) }
    }
}

/// Between Hummingbird's requests and responses and the runtime's plain ones, with the
/// body limit (413 beyond) and read timeouts every server of functions applies.
public enum HTTPBridge {
    /// A connection with no request in progress is closed after this long, so idle or
    /// half-opened connections cannot pile up.
    public static let idleTimeout: TimeAmount = .seconds(15)
    /// A body must arrive whole within this long of its headers: 408 otherwise.
    public static let bodyTimeout: Duration = .seconds(10)

    /// HTTP/1.1 with ``idleTimeout``.
    public static var server: HTTPServerBuilder { .http1(configuration: .init(idleTimeout: idleTimeout)) }

    public static func respond(
        to request: Request, limit: Int, pathPrefix: String = "", handle: (FunctionRequest) async -> FunctionResponse
    ) async -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return response(FunctionResponse.rejected(413, code: "PAYLOAD_TOO_LARGE", "body over \(limit) bytes"))
        }
        let body: ByteBuffer
        switch await collectBody(of: request, limit: limit) {
        case .body(let collected): body = collected
        case .refused(let refusal): return response(refusal)
        }
        let headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        var path = String(request.uri.path.dropFirst(pathPrefix.count))
        if !path.hasPrefix("/") { path = "/" + path }
        // The query travels with the path: account-api's usage range is in it.
        if let query = request.uri.query, !query.isEmpty { path += "?" + query }
        let functionRequest = FunctionRequest(method: request.method.rawValue, path: path, headers: headers, body: Data(buffer: body))
        return response(await handle(functionRequest))
    }

    /// The body, or the refusal: 413 past `limit`, 408 past ``bodyTimeout``, 400 for a
    /// body that cannot be read (a connection cut mid-body, malformed chunking).
    enum CollectedBody: Sendable {
        case body(ByteBuffer)
        case refused(FunctionResponse)
    }

    static func collectBody(of request: Request, limit: Int) async -> CollectedBody {
        enum Outcome: Sendable {
            case body(ByteBuffer)
            case tooLarge
            case unreadable
            case timedOut
        }
        let outcome = await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                var request = request
                do {
                    return .body(try await request.collectBody(upTo: limit))
                } catch is NIOTooManyBytesError {
                    return .tooLarge
                } catch {
                    return .unreadable
                }
            }
            group.addTask {
                try? await Task.sleep(for: bodyTimeout)
                return .timedOut
            }
            let first = await group.next() ?? .unreadable
            group.cancelAll()
            return first
        }
        switch outcome {
        case .body(let body): return .body(body)
        case .tooLarge: return .refused(.rejected(413, code: "PAYLOAD_TOO_LARGE", "body over \(limit) bytes"))
        case .unreadable: return .refused(.rejected(400, code: "INVALID_ARGUMENT", "the request body could not be read"))
        case .timedOut: return .refused(.rejected(408, code: "DEADLINE_EXCEEDED", "the body did not arrive within 10 s"))
        }
    }

    public static func response(_ response: FunctionResponse) -> Response {
        var headers = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: response.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}

/// The entry point of a function executable: read the configuration, build the host,
/// serve until SIGTERM. A missing or malformed setting stops start-up with one line.
public enum FunctionMain {
    public static func run<Handler: FunctionHandler>(
        declaration: FunctionDeclaration,
        environment: TollgateModel.Environment = TollgateModel.Environment(),
        makeHost: @Sendable (RuntimeConfiguration, Logger) async throws -> FunctionHost<Handler>
    ) async {
        let configuration: RuntimeConfiguration
        do {
            configuration = try RuntimeConfiguration(environment: environment, function: declaration)
        } catch {
            FileHandle.standardError.write(Data("\(declaration.name): \(error)\n".utf8))
            exit(78)  // EX_CONFIG
        }
        CloudLoggingHandler.bootstrap(level: Logger.Level(rawValue: configuration.logLevel) ?? .info, project: configuration.project)
        var mutableLogger = Logger(label: declaration.name)
        mutableLogger[metadataKey: "function"] = "\(declaration.name)"
        let logger = mutableLogger
        do {
            let host = try await makeHost(configuration, logger)
            let server = FunctionServer(
                host: host, port: configuration.port, metricsPort: configuration.metricsPort, logger: logger,
                onRunning: { port in logger.info("listening", metadata: ["port": "\(port)", "trigger": "\(declaration.trigger.kind)"]) },
                onMetricsRunning: { port in logger.info("serving metrics", metadata: ["address": "127.0.0.1:\(port)"]) })
            var groupConfiguration = ServiceGroupConfiguration(
                // Named: without a name the group describes the server by reflecting every
                // stored property, which was a third of the runtime's start-up work.
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: declaration.name)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // Cloud Run sends SIGKILL 10 s after SIGTERM: finish draining before that.
            groupConfiguration.maximumGracefulShutdownDuration = .seconds(8)
            try await ServiceGroup(configuration: groupConfiguration).run()
            logger.info("stopped")
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("\(declaration.name): \(error)\n".utf8))
            exit(78)
        } catch {
            logger.critical("failed: \(describe(error))")
            exit(1)
        }
    }

    /// The verifier for a public HTTP function's extra push subscriptions, when
    /// `TOLLGATE_AUDIENCE` and `TOLLGATE_INVOKERS` are set; nil (subscriptions refused) otherwise.
    public static func subscriptionVerifier(_ configuration: RuntimeConfiguration, clock: any TollgateModel.Clock) -> OIDCVerifier? {
        guard let audience = configuration.oidcAudience, !configuration.oidcInvokers.isEmpty else { return nil }
        return OIDCVerifier(
            issuers: Set(configuration.oidcIssuers), audiences: [audience], allowedEmails: Set(configuration.oidcInvokers),
            keys: RemoteJWKS(url: configuration.oidcJWKS, clock: clock), clock: clock)
    }

    /// The OIDC verifier a function's configuration asks for, or nil for public HTTP.
    public static func verifier(_ configuration: RuntimeConfiguration, declaration: FunctionDeclaration, clock: any TollgateModel.Clock)
        -> OIDCVerifier?
    {
        declaration.trigger.requiresOIDC ? subscriptionVerifier(configuration, clock: clock) : nil
    }
}
