import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe

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

func post(_ url: URL, body: Data, headers: [String: String] = [:]) async throws -> (Int, Data) {
    var request = URLRequest(url: url, timeoutInterval: 20)
    request.httpMethod = "POST"
    request.httpBody = body
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
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

/// The real `stripe-webhook` executable, started on a free port, fed signed events over HTTP.
@Suite(.serialized) struct StripeWebhookExecutableTests {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("stripe-webhook")
    }

    @Test func executable_servesSignedEvents_refusesForgeries_andStopsOnSIGTERM() async throws {
        let binary = Self.executable
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build it first: swift build --product stripe-webhook")
        let directory = scratchURL("e2e")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let secret = "whsec_e2e_local_value_only"
        let process = Process()
        process.executableURL = binary
        process.environment = [
            "PORT": "0", "STRIPE_WEBHOOK_SECRET": secret, "TOLLGATE_PRICE_TIERS": "price_pro_monthly=pro",
            "TOLLGATE_STORE": "sqlite://\(directory.path)/state.db", "K_SERVICE": "stripe-webhook",
        ]
        let output = Pipe()
        process.standardOutput = output
        let lines = Mutex<[String]>([])
        output.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            lines.withLock { $0 += text.split(separator: "\n").map(String.init) }
        }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        var port: Int?
        for _ in 0..<100 where port == nil {
            try await Task.sleep(for: .milliseconds(50))
            port = lines.withLock { $0 }.compactMap { try? JSONValue.parse(Data($0.utf8)) }
                .first { $0["message"]?.stringValue == "listening" }?["port"]?.stringValue.flatMap { Int($0) }
        }
        let url = URL(string: "http://127.0.0.1:\(try #require(port))/")!

        let body = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-pro.json"))
        let signature = StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let (status, answer) = try await post(
            url, body: body, headers: ["Stripe-Signature": signature, "Content-Type": "application/json"])
        #expect(status == 200)
        #expect(try JSONValue.parse(answer)["outcome"] == .string("applied"))
        let (again, duplicate) = try await post(url, body: body, headers: ["Stripe-Signature": signature])
        #expect(again == 200)
        #expect(try JSONValue.parse(duplicate)["outcome"] == .string("duplicate"))
        let forged = StripeSigner(secret: "whsec_somebody_else").header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        #expect(try await post(url, body: body, headers: ["Stripe-Signature": forged]).0 == 400)
        #expect(try await post(url, body: Data(count: 1_100_000), headers: ["Stripe-Signature": signature]).0 == 413)

        let state = try await SQLiteDatabase(path: directory.appendingPathComponent("state.db").path).stateDump()
        #expect(state["documents"]?["accounts/cus_TgAlpha01"]?["tier"] == .string("pro"))

        let stopping = ContinuousClock.now
        process.terminate()  // SIGTERM
        while process.isRunning, ContinuousClock.now - stopping < .seconds(10) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning, "stops inside Cloud Run's 10 seconds")
        #expect(process.terminationStatus == 0)
        let logged = lines.withLock { $0 }.joined(separator: "\n")
        #expect(!logged.contains(secret), "the webhook secret never reaches the log")
        #expect(logged.contains(#""message":"stopped""#))
    }
}
