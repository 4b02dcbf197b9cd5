import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A handler that waits at a gate, so a test can hold a request in flight.
struct GatedFunction: FunctionHandler {
    typealias Event = HTTPEvent
    let declaration = FunctionDeclaration(name: "gated", trigger: .http(authenticated: false, retryingSender: false))
    let entered = AsyncStream<Void>.makeStream()
    let release = AsyncStream<Void>.makeStream()

    func handle(_ event: HTTPEvent, context: FunctionContext) async throws -> FunctionResponse {
        entered.continuation.yield()
        for await _ in release.stream { break }
        return .json(200, .object(["done": .bool(true)]))
    }
}

@Suite(.serialized) struct ServerTests {
    @Test func sigterm_stopsAccepting_drainsTheRequestInFlight_andStops() async throws {
        let handler = GatedFunction()
        let store = SQLiteDocumentStore(try temporaryDatabase())
        let host = FunctionHost(handler: handler, store: store, clock: SystemClock(), verifier: nil, logger: capturingLogger().0)
        let port = AsyncStream<Int>.makeStream()
        let server = FunctionServer(host: host, port: 0, address: "127.0.0.1", logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        {
            port.continuation.yield($0)
        }
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }))
        let running = Task { try await group.run() }
        var ports = port.stream.makeAsyncIterator()
        let bound = try #require(await ports.next())
        let url = URL(string: "http://127.0.0.1:\(bound)/")!

        let inFlight = Task { try await post(url, body: Data("{}".utf8)) }
        var entered = handler.entered.stream.makeAsyncIterator()
        _ = await entered.next()
        await group.triggerGracefulShutdown()  // what SIGTERM does
        try await Task.sleep(for: .milliseconds(200))
        handler.release.continuation.yield()
        let (status, body) = try await inFlight.value
        #expect(status == 200, "the request in flight completes")
        #expect(String(decoding: body, as: UTF8.self) == #"{"done":true}"#)
        try await running.value
        await #expect(throws: (any Error).self, "no longer accepting") { try await post(url, body: Data()) }
    }
}
