import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TollgateModel
import TollgateSQLite

/// The emulator's Stripe: an HTTP server on loopback speaking the part of Stripe's API
/// Tollgate calls, over the SQLite fake's state, so the real libcurl Stripe client runs in
/// every replay. It can be told to fail (an outage) for a number of requests.
public final class StripeFakeServer: Sendable {
    /// The test-mode key the fake accepts (a stand-in, never a real key).
    public static let apiKey = "sk_test_tollgate_emulator_not_a_secret"

    let fake: SQLiteStripeFake
    private let outage = Mutex<(remaining: Int, status: Int)>((0, 500))
    private let running = Mutex<Task<Void, any Error>?>(nil)
    private let served = Atomic<Int>(0)

    /// Requests answered so far (retries included).
    public var requests: Int { served.load(ordering: .relaxed) }

    public init(_ database: SQLiteDatabase) { fake = SQLiteStripeFake(database) }

    /// The next `count` requests are answered with `status` (Stripe's `api_error` body).
    public func fail(next count: Int, status: Int = 500) { outage.withLock { $0 = (count, status) } }

    /// Starts serving on 127.0.0.1. - Returns: the base URL.
    public func start(logger: Logger) async throws -> String {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let responder = CallbackResponder<BasicRequestContext> { [self] request, _ in await self.respond(to: request) }
        let app = Application(
            responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        running.withLock {
            $0 = Task {
                // A server that cannot start ends the wait below instead of hanging it.
                defer { continuation.finish() }
                try await app.run()
            }
        }
        for await port in ports { return "http://127.0.0.1:\(port)" }
        throw TollgateError(.unavailable, "the Stripe fake did not start")
    }

    public func stop() { running.withLock { $0?.cancel() } }

    private func respond(to request: Request) async -> Response {
        // Counted once answered, so a caller that sees the count sees the request's effects.
        defer { served.add(1, ordering: .relaxed) }
        var request = request
        // A body cut off (the client killed mid-request) never reaches Stripe's endpoint.
        guard let body = (try? await request.collectBody(upTo: 1 << 20)).map({ String(buffer: $0) }) else {
            return Self.json(
                400, SQLiteStripeFake.error(400, type: "invalid_request_error", code: nil, "The request body could not be read.").body)
        }
        guard request.headers[.authorization] == "Bearer \(Self.apiKey)" else {
            return Self.json(
                401, SQLiteStripeFake.error(401, type: "invalid_request_error", code: nil, "Invalid API Key provided.").body)
        }
        if let status = outage.withLock({ state -> Int? in
            guard state.remaining > 0 else { return nil }
            state.remaining -= 1
            return state.status
        }) {
            return Self.json(status, SQLiteStripeFake.error(status, type: "api_error", code: nil, "The fake is in an outage.").body)
        }
        guard request.method == .post, request.uri.path == "/v1/billing/meter_events" else {
            return Self.json(
                404,
                SQLiteStripeFake.error(404, type: "invalid_request_error", code: nil, "Unrecognized request URL (\(request.uri.path)).")
                    .body)
        }
        do {
            let key = HTTPField.Name("Idempotency-Key").flatMap { request.headers[$0] }
            let answer = try await fake.createMeterEvent(Self.form(body), idempotencyKey: key)
            return Self.json(answer.status, answer.body)
        } catch {
            return Self.json(500, SQLiteStripeFake.error(500, type: "api_error", code: nil, "\(error)").body)
        }
    }

    /// `application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte.
    static func form(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                (String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? String(text)
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func json(_ status: Int, _ body: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body.rendered()))
        )
    }
}
