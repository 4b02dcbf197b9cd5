import Foundation
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `examples/fastapi`, the API service's side, run for real: the FastAPI app (uvicorn)
/// asks `tollgate serve`'s auth-validator about each request and publishes usage events
/// with google-cloud-pubsub over gRPC; the local cloud pushes them to usage-recorder.
@Suite struct FastAPIExampleTests {
    /// The example app under uvicorn, on a free loopback port.
    final class ExampleApp: Sendable {
        let process: Process
        let url: String
        let log: URL

        init(validator: String, pubsubEmulatorHost: String) async throws {
            guard PythonPeer.available else { throw Peer.pythonVenv.missing }
            log = scratchURL("fastapi").appendingPathExtension("log")
            guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
                throw TollgateError(.internal, "cannot write \(log.path)")
            }
            let port = try freeLoopbackPort()
            url = "http://127.0.0.1:\(port)"
            process = Process()
            process.executableURL = PythonPeer.python
            process.arguments = [
                "-m", "uvicorn", "app:app", "--app-dir", packageRoot.appendingPathComponent("examples/fastapi").path, "--host", "127.0.0.1",
                "--port", String(port),
            ]
            process.environment = ProcessInfo.processInfo.environment.merging([
                "TOLLGATE_VALIDATOR_URL": validator, "PUBSUB_EMULATOR_HOST": pubsubEmulatorHost,
                "GOOGLE_CLOUD_PROJECT": LocalCloudNames.project, "PYTHONUNBUFFERED": "1",
            ]) { _, given in given }
            let output = try FileHandle(forWritingTo: log)
            process.standardOutput = output
            process.standardError = output
            try process.run()
            for _ in 0..<200 where process.isRunning {
                if isListening(pid: process.processIdentifier, port: port),
                    let (status, _) = try? await get(URL(string: url + "/healthz")!), status == 200
                {
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            stop()
            throw TollgateError(.unavailable, "the FastAPI example did not start: \(try String(contentsOf: log, encoding: .utf8))")
        }

        /// The client's view: status, JSON body, headers (names lowercased).
        func call(_ method: String, _ path: String, headers: [String: String] = [:]) async throws -> (Int, JSONValue, [String: String]) {
            var request = URLRequest(url: URL(string: url + path)!, timeoutInterval: 20)
            request.httpMethod = method
            for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            var fields: [String: String] = [:]
            for (name, value) in http?.allHeaderFields ?? [:] { fields["\(name)".lowercased()] = "\(value)" }
            return (http?.statusCode ?? 0, (try? JSONValue.parse(data)) ?? .null, fields)
        }

        /// Python children inherit an ignored SIGTERM from the test runner: SIGKILL.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    @Test(Peer.pythonVenv.trait)
    func fastAPIService_asksTheValidator_publishesOverGRPC_andTheLedgerCountsEachRequestOnce() async throws {
        let serve = try await ServeProcess(["--clock", "virtual"])
        let store = SQLiteDocumentStore(try SQLiteDatabase(path: serve.state))
        let key = try await seedKeyedAccount(store, id: "acct_fastapi", units: 7, pepper: LocalEnvironment.keyPepper)
        let app = try await ExampleApp(validator: serve.url + "/auth-validator", pubsubEmulatorHost: serve.pubsubEmulatorHost)
        defer { app.stop() }
        // The first push to usage-recorder fails: Pub/Sub redelivers it.
        try await serve.tollgate(["outage", "usage-recorder", "--status", "503", "--deliveries", "1"])

        // 1 + 1 + 5 units: exactly the limit of 7.
        var requestIds: [String] = []
        for (method, path, remaining) in [("GET", "/v1/graphs", 6), ("GET", "/v1/graphs", 5), ("POST", "/v1/graphs/render", 0)] {
            // A client's own X-Tollgate-Account is ignored: the caller is the validator's verdict.
            let (status, body, headers) = try await app.call(method, path, headers: ["X-API-Key": key, "X-Tollgate-Account": "acct_other"])
            #expect(status == 200, "\(method) \(path): \(body)")
            #expect(body["account"]?.stringValue == "acct_fastapi")
            #expect(headers["ratelimit"]?.hasPrefix("\"quota\";r=\(remaining);") == true, "\(headers)")
            #expect(headers["ratelimit-policy"]?.hasPrefix("\"quota\";q=7;") == true)
            requestIds += [try #require(body["requestId"]?.stringValue)]
        }
        let (over, overBody, overHeaders) = try await app.call("GET", "/v1/graphs", headers: ["X-API-Key": key])
        #expect(over == 429 && overBody["code"]?.stringValue == "USAGE_EXCEEDED")
        #expect(Int(overHeaders["retry-after"] ?? "") ?? 0 > 0, "the client learns when to come back")
        #expect(try await app.call("GET", "/v1/graphs").0 == 401, "no key")
        #expect(try await app.call("GET", "/v1/graphs", headers: ["X-API-Key": key + "x"]).0 == 401, "a wrong key")
        #expect(try await app.call("GET", "/healthz").0 == 200)

        // Three events reach the topic through the Python client's gRPC batches.
        let publisher = SQLitePublisher(try SQLiteDatabase(path: serve.state))
        var events: [PublishedMessage] = []
        for _ in 0..<200 where events.count < 3 {
            events = try await publisher.published(topic: Topic.usageEvents)
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(events.count == 3, "only admitted requests publish: \(events.count)")
        for event in events {
            let body = try JSONValue.parse(Data(event.message.data))
            #expect(body["accountId"]?.stringValue == "acct_fastapi" && body["keyId"]?.stringValue == APIKeys.displayPrefix(of: key))
            #expect(event.message.attributes["origin"] == "graphs-api")
        }

        // The pushes: one answered 503 and redelivered 10 s later; each request is in the
        // ledger once, and the counters hold the 7 units admitted.
        try await serve.tollgate(["clock", "advance", "1s"])
        try await serve.tollgate(["clock", "advance", "11s"])
        let state = try await serve.waitFor("the ledger") { state in
            requestIds.allSatisfy { state["documents"]?["usage/acct_fastapi:\($0)"] != nil }
        }
        #expect(state["documents"]?["usageCounters/acct_fastapi"]?["units"]?.integerValue == 7)
        let deliveries = (state["pushDeliveries"]?.objectValue ?? [:]).values
        #expect(deliveries.map { $0["attempts"]?.integerValue ?? 0 }.sorted() == [1, 1, 2], "one event was redelivered")
        #expect(try await serve.stop() == 0)
    }
}
