import Foundation
import Logging
import TollgateModel

/// A function: a typed handler of one trigger. The runtime owns decoding, caller
/// authentication, status mapping, dead letters, logging and shutdown.
public protocol FunctionHandler: Sendable {
    associatedtype Event: TriggerEvent
    var declaration: FunctionDeclaration { get }
    /// Handles one delivery.
    ///
    /// Return a response (2xx acknowledges), or throw a ``TollgateError``:
    /// `INVALID_ARGUMENT` marks poison input (dead-lettered and acknowledged when the
    /// sender retries), transient codes make the sender retry, anything else is a 500.
    func handle(_ event: Event, context: FunctionContext) async throws -> FunctionResponse
    /// Called once when the server has stopped accepting and the requests in flight are
    /// done (SIGTERM), before the process exits: give back what the instance holds.
    func drained() async
}

extension FunctionHandler {
    public func drained() async {}
}

/// What a handler gets with each delivery.
public struct FunctionContext: Sendable {
    public var logger: Logger
    public var clock: any TollgateModel.Clock
    /// The raw request, for handlers that need bytes exactly as sent (signatures).
    public var request: FunctionRequest
    /// The function's metrics; nil where nothing collects them.
    public var metrics: FunctionMetrics?

    public init(logger: Logger, clock: any TollgateModel.Clock, request: FunctionRequest) {
        self.logger = logger
        self.clock = clock
        self.request = request
    }

    /// Adds to the function's counter `tollgate_<name>_total` (webhook outcomes, quota
    /// denials, exported records …).
    public func count(_ name: String, _ dimensions: [(String, String)] = [], by amount: Int64 = 1) {
        metrics?.count(name, dimensions, by: amount)
    }
}

/// A trigger payload the runtime can decode from a request. Each handler names exactly
/// one; the runtime never tries decoders in turn.
public protocol TriggerEvent: Sendable {
    /// The trigger that delivers this event: a function's declared trigger must match.
    static var kind: TriggerKind { get }
    /// - Throws: `INVALID_ARGUMENT` naming what is wrong.
    static func decode(_ request: FunctionRequest) throws -> Self
    /// Identifying metadata for logs and dead letters (message id, task name …).
    var metadata: [String: String] { get }
}
