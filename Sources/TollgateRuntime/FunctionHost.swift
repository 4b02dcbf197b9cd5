import Crypto
import Foundation
import Logging
import TollgateJOSE
import TollgateModel

/// The function runtime's request pipeline, independent of the HTTP server: health,
/// method, caller authentication, trigger decoding, the handler, then the mapping of
/// its outcome to a status, a dead letter and one log line.
///
/// Which outcomes make a sender redeliver:
/// - 2xx: acknowledged (Pub/Sub acks 102, 200, 201, 202, 204; Tasks and Scheduler any 2xx).
/// - Poison (`INVALID_ARGUMENT`) from a sender that retries: written to `deadLetters`
///   with the raw body, reason and metadata, then acknowledged with 200, so it is never
///   redelivered forever and never lost. From a sender that does not retry: 400.
/// - Transient (`ABORTED`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`): 503, redelivered.
/// - `RESOURCE_EXHAUSTED`: 429 with `Retry-After`, redelivered later.
/// - An unauthenticated or forbidden caller: 401 / 403, nothing written.
/// - Anything else is a bug: 500, redelivered, logged as an error.
public struct FunctionHost<Handler: FunctionHandler>: Sendable {
    public let handler: Handler
    let store: any DocumentStore
    let clock: any TollgateModel.Clock
    let verifier: OIDCVerifier?
    let logger: Logger
    /// Bodies larger than this are refused with 413 (the server enforces it while reading;
    /// the host again, for deliveries that do not come through the server).
    public let maxBodyBytes: Int
    /// Counts and latencies of every delivery, served on `GET /metrics` of the metrics
    /// port (``metricsResponse(_:)``), never of the public one.
    public let metrics: FunctionMetrics

    /// What one request's outbound calls may take together (``Deadline``).
    public let deadline: Duration
    /// The service and revision error events name (Cloud Run's `K_SERVICE`, `K_REVISION`).
    public let serviceContext: ReportedErrorEvent.ServiceContext

    public init(
        handler: Handler, store: any DocumentStore, clock: any TollgateModel.Clock, verifier: OIDCVerifier?, logger: Logger,
        maxBodyBytes: Int = 1_048_576, metrics: FunctionMetrics = FunctionMetrics(), deadline: Duration? = nil,
        serviceContext: ReportedErrorEvent.ServiceContext? = nil
    ) {
        self.serviceContext = serviceContext ?? .init(service: handler.declaration.name, version: nil)
        self.deadline = deadline ?? handler.declaration.service.deadline
        self.metrics = metrics
        self.handler = handler
        self.store = store
        self.clock = clock
        self.verifier = verifier
        self.logger = logger
        self.maxBodyBytes = maxBodyBytes
    }

    var declaration: FunctionDeclaration { handler.declaration }

    public func handle(_ request: FunctionRequest) async -> FunctionResponse {
        if request.path == "/healthz" {
            return request.method == "GET" || request.method == "HEAD"
                ? FunctionResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Data("ok\n".utf8))
                : .methodNotAllowed(allow: ["GET", "HEAD"], "use GET")
        }
        let started = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "function"] = "\(declaration.name)"
        logger[metadataKey: "trigger"] = "\(declaration.trigger.kind)"
        if let trace = traceID(traceparent: request.header("traceparent"), cloudTraceContext: request.header("X-Cloud-Trace-Context")) {
            logger[metadataKey: CloudLoggingHandler.traceKey] = "\(trace)"
        }
        let (response, reason, metadata, thrown) = await process(request, logger: logger)
        metrics.recordDelivery(
            function: declaration.name, trigger: declaration.trigger.kind.rawValue, status: response.status,
            deadLettered: metadata["deadLetter"] != nil, latency: ContinuousClock.now - started)
        // A bug (500) and a dead letter are error events, each one a person should see; a
        // retry asked for (503, 429) is counted in the metrics, never reported one by one.
        let reported = response.status == 500 || metadata["deadLetter"] != nil
        let level: Logger.Level =
            reported || response.status >= 500 ? .error : (response.status >= 400 || reason != nil ? .warning : .info)
        guard logger.logLevel <= level else { return response }
        let elapsed = ContinuousClock.now - started
        var line: Logger.Metadata = [
            "status": "\(response.status)",
            "latencyMs":
                "\(Double(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000) / 1000)",
        ]
        for (key, value) in metadata { line[key] = "\(value)" }
        let why = reason ?? (response.isSuccess ? nil : Self.errorMessage(response))
        if let why { line["reason"] = "\(why)" }
        var message = "\(request.method) \(request.path) \(response.status)"
        if reported {
            // Error Reporting groups events by their message: the error, and where it was thrown.
            let event = ReportedErrorEvent(
                serviceContext: serviceContext, location: Self.location(of: thrown), method: request.method, status: response.status)
            message += ": \(why ?? "internal error") (\(event.location.filePath):\(event.location.lineNumber))"
            line.merge(event.metadata) { _, event in event }
        }
        logger.log(level: level, "\(message)", metadata: line)
        return response
    }

    /// Where an error came from: where a ``TollgateError`` was made, else where the
    /// runtime caught what the handler threw.
    static func location(of error: (any Error)?) -> ReportedErrorEvent.Location {
        if let error = error as? TollgateError {
            return .init(filePath: error.file, lineNumber: error.line, functionName: error.function)
        }
        return .init(filePath: "\(#fileID)", lineNumber: #line, functionName: "\(Handler.self).handle(_:context:)")
    }

    /// What the metrics port answers: `GET /metrics` in Prometheus' text format.
    public func metricsResponse(_ request: FunctionRequest) -> FunctionResponse {
        guard request.path == "/metrics" else { return .rejected(404, code: "NOT_FOUND", "only /metrics is served here") }
        guard request.method == "GET" else { return .methodNotAllowed(allow: ["GET"], "use GET") }
        return FunctionResponse(
            status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: Data(metrics.exposition()))
    }

    /// The response, why it was refused or failed, what identifies the delivery, and the
    /// error thrown, if any.
    private func process(_ request: FunctionRequest, logger: Logger) async -> (FunctionResponse, String?, [String: String], (any Error)?) {
        guard request.body.count <= maxBodyBytes else {
            return (
                .rejected(413, code: "PAYLOAD_TOO_LARGE", "body over \(maxBodyBytes) bytes"), "body of \(request.body.count) bytes", [:],
                nil
            )
        }
        guard request.method == "POST" || declaration.trigger.kind == .http else {
            return (.methodNotAllowed(allow: ["POST"], "triggers are delivered with POST"), "method \(request.method)", [:], nil)
        }
        var caller: [String: String] = [:]
        if declaration.trigger.requiresOIDC {
            guard let verifier else {
                return (.rejected(500, code: "INTERNAL", "no OIDC verifier configured"), "no OIDC verifier", [:], nil)
            }
            do {
                caller["caller"] = try await verifier.verify(authorization: request.header("Authorization"))
            } catch {
                let code = error.tollgateCode
                let status = code == .permissionDenied ? 403 : (code == .unavailable ? 503 : 401)
                return (.rejected(status, code: code.name, describe(error)), "caller: \(describe(error))", [:], nil)
            }
        }
        let event: Handler.Event
        do {
            event = try Handler.Event.decode(request)
        } catch {
            return await failure(error, request: request, metadata: caller)
        }
        let metadata = event.metadata.merging(caller) { event, _ in event }
        var context = FunctionContext(logger: logger, clock: clock, request: request)
        context.metrics = metrics
        do {
            // Every outbound call of the request shares what its sender waits.
            let response = try await Deadline.run(within: deadline) {
                try await handler.handle(event, context: context)
            }
            // A handler's own refusal carries its reason in the body, read only if logged.
            return (response, nil, metadata, nil)
        } catch {
            return await failure(error, request: request, metadata: metadata)
        }
    }

    /// Maps a thrown error to a response, writing a dead letter for poison.
    private func failure(_ error: any Error, request: FunctionRequest, metadata given: [String: String]) async -> (
        FunctionResponse, String?, [String: String], (any Error)?
    ) {
        let (response, reason, metadata) = await mapping(error, request: request, metadata: given)
        return (response, reason, metadata, error)
    }

    private func mapping(_ error: any Error, request: FunctionRequest, metadata given: [String: String]) async -> (
        FunctionResponse, String?, [String: String]
    ) {
        let reason = describe(error)
        // The code in the log line too, for an operator to filter on (`DEADLINE_EXCEEDED`…).
        let metadata = given.merging(["errorCode": error.tollgateCode.name]) { _, code in code }
        switch error.tollgateCode {
        case .invalidArgument where declaration.trigger.senderRetries:
            do {
                let id = try await writeDeadLetter(request: request, reason: reason, metadata: metadata)
                return (
                    .json(200, .object(["deadLetter": .string(id)])), "dead-lettered: \(reason)",
                    metadata.merging(["deadLetter": id]) { _, new in new }
                )
            } catch {
                return (
                    .rejected(503, code: "UNAVAILABLE", "cannot record the dead letter"), "dead letter failed: \(describe(error))", metadata
                )
            }
        case .invalidArgument: return (.rejected(400, code: "INVALID_ARGUMENT", reason), reason, metadata)
        case .unauthenticated: return (.rejected(401, code: "UNAUTHENTICATED", reason), reason, metadata)
        case .permissionDenied: return (.rejected(403, code: "PERMISSION_DENIED", reason), reason, metadata)
        case .resourceExhausted:
            return (.rejected(429, code: "RESOURCE_EXHAUSTED", reason).with(header: "Retry-After", "10"), reason, metadata)
        case .aborted, .unavailable, .deadlineExceeded:
            return (.rejected(503, code: error.tollgateCode.name, reason).with(header: "Retry-After", "1"), reason, metadata)
        default:
            return (.rejected(500, code: "INTERNAL", "internal error"), "internal: \(reason)", metadata)
        }
    }

    /// Writes the dead letter under an id derived from the function and the body, so a
    /// redelivery of the same poison lands on the same record.
    private func writeDeadLetter(request: FunctionRequest, reason: String, metadata: [String: String]) async throws -> String {
        let digest = Hex.encode(SHA256.hash(data: request.body).prefix(20))
        let id = "\(declaration.name)-\(digest)"
        var identifying = metadata
        for name in ["Content-Type", "ce-id", "ce-type", "X-CloudTasks-TaskName", "X-CloudScheduler-JobName", "svix-id"] {
            if let value = request.header(name) { identifying["header:\(name)"] = value }
        }
        // Keep the record under Firestore's 1 MiB document limit.
        let limit = 900_000
        if request.body.count > limit { identifying["truncatedFrom"] = String(request.body.count) }
        let letter = DeadLetter(
            function: declaration.name, trigger: declaration.trigger.kind.rawValue, reason: reason, body: request.body.prefix(limit),
            metadata: identifying, received: clock.now())
        let path = try DocumentPath(collection: DeadLetter.collection, id: id)
        _ = try await store.runTransaction { transaction in
            // First arrival wins: a redelivery must not rewrite `received`.
            if try await transaction.get(path) == nil { try transaction.create(path, try FieldValueEncoder().encode(letter)) }
        }
        return id
    }

    static func errorMessage(_ response: FunctionResponse) -> String? {
        guard let json = try? JSONValue.parse(response.body) else { return nil }
        return json["error"]?["message"]?.stringValue
    }
}

extension FunctionResponse {
    public func with(header name: String, _ value: String) -> FunctionResponse {
        var copy = self
        copy.headers[name] = value
        return copy
    }
}
