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

        /// - Parameter upstream: the API service's port; nil serves an nginx echo of the
        ///   X-Tollgate-* headers it receives.
        /// - Parameter cloudRun: serve `cloud-run.conf.template` as the gateway image renders
        ///   it (each `${VARIABLE}` from the environment) rather than `example.conf`.
        init(validatorPort: Int, upstream: Int? = nil, cloudRun: Bool = false) async throws {
            guard let binary = Peer.firstExecutable(Peer.nginxPaths) else { throw Peer.nginx.missing }
            directory = scratchURL("nginx")
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("tmp"), withIntermediateDirectories: true)
            var started: (Process, Int)?
            for _ in 0..<5 where started == nil {
                let listen = try freeLoopbackPort()
                let api = try upstream ?? freeLoopbackPort()
                let recipes = packageRoot.appendingPathComponent("deploy/gateways/nginx")
                let example =
                    cloudRun
                    ? try Self.cloudRunServer(
                        directory: directory, recipes: recipes,
                        environment: [
                            "PORT": "127.0.0.1:\(listen)", "TOLLGATE_VALIDATOR_URL": "http://127.0.0.1:\(validatorPort)",
                            "TOLLGATE_UPSTREAM_URL": "http://127.0.0.1:\(api)", "TOLLGATE_RESOLVER": "127.0.0.1",
                        ])
                    : try String(contentsOf: recipes.appendingPathComponent("example.conf"), encoding: .utf8)
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
                        \(upstream == nil ? Self.echo(port: api) : "")
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
                    // Listening, and on the echo's port too: either may be another test's.
                    if isListening(pid: process.processIdentifier, port: listen),
                        upstream != nil || isListening(pid: process.processIdentifier, port: api)
                    {
                        started = (process, listen)
                    }
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

        /// `cloud-run.conf.template` with each `${VARIABLE}` filled in as the nginx image's
        /// start-up does (envsubst of the variables set), its relative includes found where
        /// the image puts the recipe (`tollgate/` beside the configuration).
        static func cloudRunServer(directory: URL, recipes: URL, environment: [String: String]) throws -> String {
            var text = try String(contentsOf: recipes.appendingPathComponent("cloud-run.conf.template"), encoding: .utf8)
            for (name, value) in environment { text = text.replacingOccurrences(of: "${\(name)}", with: value) }
            try #require(!text.contains("${"), "the template reads only PORT and the variables gateway.tf sets")
            let link = directory.appendingPathComponent("tollgate")
            if !FileManager.default.fileExists(atPath: link.path) {
                try FileManager.default.createSymbolicLink(at: link, withDestinationURL: recipes)
            }
            return text
        }

        /// The API service: answers with the X-Tollgate-* headers it was given.
        static func echo(port: Int) -> String {
            """
            server {
                listen 127.0.0.1:\(port);
                location / {
                    return 200 "endpoint=$http_x_tollgate_endpoint cost=$http_x_tollgate_cost feature=$http_x_tollgate_feature account=$http_x_tollgate_account key=$http_x_tollgate_key tier=$http_x_tollgate_tier organization=$http_x_tollgate_organization role=$http_x_tollgate_role code=$http_x_tollgate_code method=$request_method";
                }
            }
            """
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
    /// priorityQueue, `/v1/bulk` costs 10), and nginx with the recipe in front of it.
    static func validatorBehindNginx(_ cluster: ReliabilityTests.Cluster, upstream: Int? = nil) async throws -> (RunningFunction, Nginx) {
        let validator = try await RunningFunction(
            "auth-validator",
            environment: [
                "TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "TOLLGATE_KEY_PEPPER": pepper, "TOLLGATE_CACHE_TTL": "0",
                "TOLLGATE_ENDPOINT_FEATURES": "/v1/priority=priorityQueue", "TOLLGATE_ENDPOINT_COSTS": "/v1/bulk=10",
                // Counted per request, so the store can be read between requests.
                "TOLLGATE_QUOTA_MODE": "strict",
            ])
        return (validator, try await Nginx(validatorPort: validator.port, upstream: upstream))
    }

    /// Starlette under uvicorn (Tests/peers/routing_upstream.py): routes on the decoded path,
    /// as ASGI and WSGI servers do, and answers with the route and the X-Tollgate-* headers.
    final class ASGIUpstream: Sendable {
        let process: Process
        let port: Int

        init() async throws {
            guard PythonPeer.available else { throw Peer.pythonVenv.missing }
            port = try freeLoopbackPort()
            process = Process()
            process.executableURL = PythonPeer.python
            process.arguments = [
                "-m", "uvicorn", "routing_upstream:app", "--app-dir", packageRoot.appendingPathComponent("Tests/peers").path,
                "--host", "127.0.0.1", "--port", String(port), "--log-level", "warning",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<200 where process.isRunning {
                if isListening(pid: process.processIdentifier, port: port),
                    let (status, _) = try? await get(URL(string: "http://127.0.0.1:\(port)/healthz")!), status == 200
                {
                    return
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            stop()
            throw TollgateError(.unavailable, "the ASGI upstream did not start")
        }

        /// Python children inherit an ignored SIGTERM from the test runner: SIGKILL.
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A client's forged organization and role, and every spelling of a gated path that an
    /// ASGI framework routes to the gated handler (`%2F`, `%2f`, `%5C`, `;` parameters),
    /// through the real nginx recipe to a Starlette upstream: the gate and the price hold.
    @Test(Peer.nginx.trait, Peer.pythonVenv.trait)
    func encodedSlashes_andForgedRoles_throughNginx_toAnASGIUpstream() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let key = try await seedKeyedAccount(store, id: "acct_asgi", units: 1_000, pepper: Self.pepper)
        let upstream = try await ASGIUpstream()
        defer { upstream.stop() }
        let (validator, nginx) = try await Self.validatorBehindNginx(cluster, upstream: upstream.port)
        defer { nginx.stop() }
        func used() async throws -> Int64 {
            guard case .integer(let used) = try await store.get(path("quotas/acct_asgi"))?.fields["used"] else { return 0 }
            return used
        }

        let (status, body) = try await nginx.request(
            "/v1/things",
            headers: [
                ("X-API-Key", key), ("X-Tollgate-Role", "org:admin"), ("X-Tollgate-Organization", "org_victim"),
                ("X-Tollgate-Code", "VALID"), ("X-Tollgate-Tier", "enterprise"),
            ])
        #expect(status == 200)
        let received = try JSONValue.parse(Data(body.utf8))
        #expect(received["route"] == .string("other"))
        #expect(
            received["tollgate"]
                == .object([
                    "x-tollgate-account": .string("acct_asgi"), "x-tollgate-key": .string(String(key.prefix(12))),
                    "x-tollgate-tier": .string("enterprise"),
                ]), "only the verdict's identity reaches the API: \(body)")

        // The plain path is gated; so is every spelling Starlette routes to the same handler.
        for spelling in [
            "/v1/priority", "/v1%2Fpriority", "/v1%2fpriority", "/v1%5Cpriority", "/v1%5cpriority", "/v1;x=1/priority",
            "/v1/priority;x=1", "/v1%2F%2E%2E%2Fv1%2Fpriority", "/V1%2Fpriority",
        ] {
            let (status, body) = try await nginx.request(spelling, headers: [("X-API-Key", key)])
            #expect(status == 403 && !body.contains("\"route\""), "\(spelling): \(status) \(body)")
        }
        #expect(try await used() == 1, "refusals consume nothing")

        // `/v1%2Fbulk` is `/v1/bulk` to Starlette: it costs what `/v1/bulk` costs.
        let (bulkStatus, bulk) = try await nginx.request("/v1%2Fbulk", headers: [("X-API-Key", key)])
        #expect(bulkStatus == 200 && bulk.contains("\"route\":\"bulk\""), "\(bulk)")
        #expect(try await used() == 11)
        #expect(try await validator.stop() == 0)
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
            "/v1/things",
            headers: [
                ("X-API-Key", key), ("X-Tollgate-Cost", "0"), ("X-Tollgate-Cost", "0"), ("X-Tollgate-Feature", "x"),
                ("X-Tollgate-Role", "org:admin"), ("X-Tollgate-Organization", "org_victim"),
            ])
        #expect(status == 200)
        #expect(
            echoed.hasPrefix("endpoint= cost= feature= account=acct_gw key=tg_test_"),
            "the API service sees no client-sent X-Tollgate-* header, and the verdict's identity: \(echoed)")
        #expect(echoed.contains("organization= role= "), "a client's organization and role never reach the API: \(echoed)")
        #expect(try await used() == 1)
        #expect(try await nginx.request("/v1/bulk/run", headers: [("X-API-Key", key), ("X-Tollgate-Cost", "0")]).0 == 200)
        #expect(try await used() == 11)
        #expect(try await nginx.request("/v1/things", headers: []).0 == 401, "no credential")
        #expect(try await validator.stop() == 0)
    }

    /// The gateway image's server (`cloud-run.conf.template`, filled in as the image does
    /// from what gateway.tf sets) behaves as the recipe: forged headers dropped, the
    /// verdict's identity upstream, refusals 401/403/429, costs from the validator's
    /// `TOLLGATE_ENDPOINT_COSTS` with no per-route nginx edit.
    @Test(Peer.nginx.trait)
    func theGatewayImagesServer_admitsRefusesAndPrices_asTheRecipe() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let store = SQLiteDocumentStore(cluster.database)
        let key = try await seedKeyedAccount(store, id: "acct_cloud", units: 12, pepper: Self.pepper)
        let validator = try await RunningFunction(
            "auth-validator",
            environment: [
                "TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "TOLLGATE_KEY_PEPPER": Self.pepper, "TOLLGATE_CACHE_TTL": "0",
                "TOLLGATE_ENDPOINT_FEATURES": "/v1/priority=priorityQueue", "TOLLGATE_ENDPOINT_COSTS": "/v1/bulk=10",
                "TOLLGATE_QUOTA_MODE": "strict",
            ])
        let nginx = try await Nginx(validatorPort: validator.port, cloudRun: true)
        defer { nginx.stop() }

        let (status, echoed) = try await nginx.request(
            "/v1/things", headers: [("X-API-Key", key), ("X-Tollgate-Cost", "0"), ("X-Tollgate-Role", "org:admin")])
        #expect(status == 200)
        #expect(echoed.hasPrefix("endpoint= cost= feature= account=acct_cloud key=tg_test_"), "\(echoed)")
        #expect(echoed.contains("organization= role= "), "\(echoed)")
        #expect(try await nginx.request("/v1/priority", headers: [("X-API-Key", key)]).0 == 403)
        #expect(try await nginx.request("/v1/things", headers: []).0 == 401)
        #expect(try await nginx.request("/_tollgate/healthz", headers: []).0 == 200, "the uptime check's path asks no one")
        // 1 used; /v1/bulk costs 10 (the validator's price): 11; the next bulk request passes 12.
        #expect(try await nginx.request("/v1/bulk/run", headers: [("X-API-Key", key)]).0 == 200)
        let (refused, _, headers) = try await nginx.call("GET", "/v1/bulk/run", headers: [("X-API-Key", key)])
        #expect(refused == 429 && headers["retry-after"] != nil)
        guard case .integer(let used) = try await store.get(path("quotas/acct_cloud"))?.fields["used"] else {
            Issue.record("no quota window")
            return
        }
        #expect(used == 11)
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
