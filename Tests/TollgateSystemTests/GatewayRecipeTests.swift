import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The nginx recipe (deploy/gateways/nginx) in front of the real auth-validator, on
/// loopback: a client's forged X-Tollgate-* headers reach neither the validator nor the
/// API service, and the gate and the cost are the gateway's.
@Suite(.serialized) struct GatewayRecipeTests {
    static let pepper = "pepper-for-the-gateway-recipe-tests-0123456789"

    /// nginx with the recipe's example server, and an echo of what the API service receives.
    final class Nginx: Sendable {
        let process: Process
        let port: Int
        let directory: URL

        init(validatorPort: Int) async throws {
            guard let binary = Peer.firstExecutable(Peer.nginxPaths) else { throw Peer.nginx.missing }
            directory = scratchURL("nginx")
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("tmp"), withIntermediateDirectories: true)
            var started: (Process, Int)?
            for _ in 0..<5 where started == nil {
                let listen = Int.random(in: 20_000..<40_000)
                let api = listen + 1
                let recipes = packageRoot.appendingPathComponent("deploy/gateways/nginx")
                let example = try String(contentsOf: recipes.appendingPathComponent("example.conf"), encoding: .utf8)
                    .replacingOccurrences(of: "{{LISTEN}}", with: String(listen))
                    .replacingOccurrences(of: "{{VALIDATOR}}", with: String(validatorPort))
                    .replacingOccurrences(of: "{{API}}", with: String(api))
                    .replacingOccurrences(of: "{{RECIPES}}", with: recipes.path)
                let temp = directory.appendingPathComponent("tmp").path
                let configuration = """
                    daemon off;
                    master_process off;
                    pid \(directory.path)/nginx.pid;
                    error_log \(directory.path)/error.log warn;
                    events { worker_connections 64; }
                    http {
                        access_log off;
                        client_body_temp_path \(temp)/body; proxy_temp_path \(temp)/proxy; fastcgi_temp_path \(temp)/fastcgi;
                        uwsgi_temp_path \(temp)/uwsgi; scgi_temp_path \(temp)/scgi;
                        \(example)
                        # The API service: answers with the X-Tollgate-* headers it was given.
                        server {
                            listen 127.0.0.1:\(api);
                            location / {
                                return 200 "endpoint=$http_x_tollgate_endpoint cost=$http_x_tollgate_cost feature=$http_x_tollgate_feature account=$http_x_tollgate_account key=$http_x_tollgate_key tier=$http_x_tollgate_tier code=$http_x_tollgate_code method=$request_method";
                            }
                        }
                    }
                    """
                let file = directory.appendingPathComponent("nginx.conf")
                try configuration.write(to: file, atomically: true, encoding: .utf8)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = ["-c", file.path, "-p", directory.path, "-e", "\(directory.path)/error.log"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                for _ in 0..<100 where process.isRunning && started == nil {
                    try await Task.sleep(for: .milliseconds(50))
                    if (try? await get(URL(string: "http://127.0.0.1:\(api)/")!)) != nil { started = (process, listen) }
                }
                if started == nil, process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                }
            }
            guard let started else {
                let log = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
                throw TollgateError(.unavailable, "nginx did not start: \(log)")
            }
            (process, port) = started
        }

        func request(_ path: String, headers: [(String, String)]) async throws -> (Int, String) {
            let (status, body, _) = try await call("GET", path, headers: headers)
            return (status, body)
        }

        /// The client's view: status, body and response headers (names lowercased).
        func call(_ method: String, _ path: String, headers: [(String, String)]) async throws -> (Int, String, [String: String]) {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!, timeoutInterval: 20)
            request.httpMethod = method
            if ["POST", "PUT", "PATCH"].contains(method) { request.httpBody = Data("{}".utf8) }
            for (name, value) in headers { request.addValue(value, forHTTPHeaderField: name) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = response as? HTTPURLResponse
            var fields: [String: String] = [:]
            for (name, value) in http?.allHeaderFields ?? [:] { fields["\(name)".lowercased()] = "\(value)" }
            return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), fields)
        }

        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// The real auth-validator on the cluster's state (no cache; `/v1/priority` needs
    /// priorityQueue), and nginx with the recipe in front of it.
    static func validatorBehindNginx(_ cluster: ReliabilityTests.Cluster) async throws -> (RunningFunction, Nginx) {
        let validator = try await RunningFunction(
            "auth-validator",
            environment: [
                "TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "TOLLGATE_KEY_PEPPER": pepper, "TOLLGATE_CACHE_TTL": "0",
                "TOLLGATE_ENDPOINT_FEATURES": "/v1/priority=priorityQueue",
                // Counted per request, so the store can be read between requests.
                "TOLLGATE_QUOTA_MODE": "strict",
            ])
        return (validator, try await Nginx(validatorPort: validator.port))
    }

    /// Skipped (and shown as skipped) without nginx, unless the peers are required.
    @Test(Peer.nginx.trait)
    func forgedTollgateHeaders_haveNoEffect_throughNginx() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let key = try await seedKeyedAccount(store, id: "acct_gw", units: 1_000, pepper: Self.pepper)
        let (validator, nginx) = try await Self.validatorBehindNginx(cluster)
        defer { nginx.stop() }
        func used() async throws -> Int64? {
            guard case .integer(let used) = try await store.get(path("quotas/acct_gw"))?.fields["used"] else { return nil }
            return used
        }

        // The endpoint is the URI nginx received; a client's endpoint or feature is dropped.
        for forged in [
            [("X-Tollgate-Endpoint", "/")], [("X-Tollgate-Feature", "asyncJobs")], [("X-Original-URI", "/v1/free")],
        ] {
            let (status, _) = try await nginx.request("/v1/priority", headers: [("X-API-Key", key)] + forged)
            #expect(status == 403, "\(forged)")
        }
        #expect(try await nginx.request("/v1/%70riority", headers: [("X-API-Key", key)]).0 == 403)
        #expect(try await used() == nil, "refusals consume nothing")

        // A client's cost is dropped: each request costs the gateway's 1, or 10 under /v1/bulk/.
        let (status, echoed) = try await nginx.request(
            "/v1/things", headers: [("X-API-Key", key), ("X-Tollgate-Cost", "0"), ("X-Tollgate-Cost", "0"), ("X-Tollgate-Feature", "x")])
        #expect(status == 200)
        #expect(
            echoed.hasPrefix("endpoint= cost= feature= account=acct_gw key=tg_test_"),
            "the API service sees no client-sent X-Tollgate-* header, and the verdict's identity: \(echoed)")
        #expect(try await used() == 1)
        #expect(try await nginx.request("/v1/bulk/run", headers: [("X-API-Key", key), ("X-Tollgate-Cost", "0")]).0 == 200)
        #expect(try await used() == 11)
        #expect(try await nginx.request("/v1/things", headers: []).0 == 401, "no credential")
        #expect(try await validator.stop() == 0)
    }

    /// Every method a client may use × every verdict, through a real nginx with the recipe
    /// in front of the real auth-validator: what the client sees (status, quota headers,
    /// Retry-After) and what the API service sees (the verdict's identity, only when
    /// admitted).
    @Test(Peer.nginx.trait)
    func everyMethod_andEveryVerdict_reachClientAndUpstream_asTheRecipeSays() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let hasher = try APIKeys(pepper: Self.pepper)
        let valid = try await seedKeyedAccount(store, id: "acct_ok", units: 1_000_000, pepper: Self.pepper)
        let revoked = try await seedKeyedAccount(store, id: "acct_revoked", units: 1_000, pepper: Self.pepper)
        try await store.update(
            try DocumentPath(collection: APIKeyRecord.collection, id: hasher.hash(revoked)),
            ["revoked": .timestamp(Timestamp(Date()).adding(seconds: -60))])
        let suspended = try await seedKeyedAccount(store, id: "acct_suspended", units: 1_000, pepper: Self.pepper)
        try await store.update(
            try DocumentPath(collection: Account.collection, id: "acct_suspended"), ["entitlements.enabled": .bool(false)])
        let exhausted = try await seedKeyedAccount(store, id: "acct_spent", units: 5, pepper: Self.pepper)
        let (validator, nginx) = try await Self.validatorBehindNginx(cluster)
        defer { nginx.stop() }

        struct Case {
            let name: String
            let path: String
            let headers: [(String, String)]
            let status: Int
            let code: String
        }
        let cases = [
            Case(name: "valid", path: "/v1/things", headers: [("X-API-Key", valid)], status: 200, code: "VALID"),
            Case(name: "no key", path: "/v1/things", headers: [], status: 401, code: "NOT_FOUND"),
            Case(
                name: "wrong key", path: "/v1/things", headers: [("X-API-Key", "tg_test_" + String(repeating: "A", count: 32))],
                status: 401, code: "NOT_FOUND"),
            Case(name: "revoked", path: "/v1/things", headers: [("X-API-Key", revoked)], status: 401, code: "REVOKED"),
            Case(name: "suspended", path: "/v1/things", headers: [("X-API-Key", suspended)], status: 403, code: "DISABLED"),
            Case(name: "feature missing", path: "/v1/priority", headers: [("X-API-Key", valid)], status: 403, code: "FORBIDDEN"),
            Case(name: "over quota", path: "/v1/bulk/run", headers: [("X-API-Key", exhausted)], status: 429, code: "USAGE_EXCEEDED"),
        ]
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            for check in cases {
                let (status, body, headers) = try await nginx.call(method, check.path, headers: check.headers)
                let what = "\(method) \(check.name)"
                #expect(status == check.status, "\(what): \(status) \(body)")
                if status == 200 {
                    #expect(body.contains("account=acct_ok key=tg_test_") && body.contains("tier=enterprise"), "\(what): \(body)")
                    #expect(body.contains("method=\(method)") && body.contains("code= "), "\(what): \(body)")
                    #expect(headers["ratelimit-policy"]?.hasPrefix("\"quota\";q=1000000;w=") == true, "\(what): \(headers)")
                    #expect(headers["ratelimit"]?.hasPrefix("\"quota\";r=") == true, "\(what): \(headers)")
                } else {
                    #expect(body.contains("\"code\":\"\(check.code)\""), "\(what): \(body)")
                    #expect(!body.contains("account="), "\(what): a refused request never reaches the API service")
                }
                if check.status == 429 {
                    #expect(Int(headers["retry-after"] ?? "") ?? 0 > 0, "\(what): \(headers)")
                    // 5 units left, and a request there costs 10: refused, nothing consumed.
                    #expect(headers["ratelimit"]?.hasPrefix("\"quota\";r=5;t=") == true, "\(what): \(headers)")
                }
                if check.status == 401 { #expect(headers["www-authenticate"] != nil, "\(what): \(headers)") }
            }
        }

        // The validator unreachable: closed, never open.
        #expect(try await validator.stop() == 0)
        let (status, body, _) = try await nginx.call("GET", "/v1/things", headers: [("X-API-Key", valid)])
        #expect(status == 500 && body.contains("UNAVAILABLE"), "\(status) \(body)")
    }
}
