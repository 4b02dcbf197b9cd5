import Foundation
import Testing
import TollgateExport
import TollgateModel
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator
@testable import UsageExport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// schemathesis (PyPI) against the real executables, over loopback, from the OpenAPI
/// documents in docs/openapi: every check it has (no server error, every response fits
/// its schema and its documented status and headers, wrong input refused, auth not
/// ignored), examples, coverage, fuzzing and stateful phases, with a fixed seed.
@Suite(.serialized) struct SchemathesisTests {
    static let pepper = "pepper-for-the-schemathesis-run-0123456789"

    @Test(Peer.pythonVenv.trait)
    func accountAPI_againstItsDocument() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let clerk = try LocalOIDCIssuer(keyID: "clerk-schemathesis")
        let store = SQLiteDocumentStore(cluster.database)
        // The session's user has a pro account with a day exported (the document's example
        // day), so every route has something to answer with, receipts included.
        _ = try await store.set(try DocumentPath("users/user_st"), ["accountId": .string("acct_0")])
        try await store.set(
            try DocumentPath(collection: Account.collection, id: "acct_0"),
            try FieldValueEncoder().encode(Account(id: "acct_0", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro))))
        let day = UTCDay("2026-01-01")!
        try await seedLedger(store, day: day, count: 50)
        let exporter = UsageExporter(
            configuration: .init(reportQueue: "usage-reports", reportURL: "http://usage-report.test/"), store: store,
            blobs: SQLiteBlobStore(cluster.database), tasks: SQLiteTaskQueue(cluster.database), signer: exportTestSigner,
            clock: SystemClock())
        guard case .exported = try await exporter.export(day) else { throw TollgateError(.internal, "the day did not export") }
        let function = try await RunningFunction(
            "account-api",
            environment: cluster.environment(
                "https://account-api.test",
                [
                    "TOLLGATE_KEY_PEPPER": Self.pepper, "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
                    "TOLLGATE_CLERK_ISSUER": LocalEnvironment.clerkIssuer,
                    "TOLLGATE_CLERK_PUBLIC_KEY": clerk.publicKeyPEM,
                    "TOLLGATE_DASHBOARD_ORIGINS": LocalEnvironment.clerkAuthorizedParty,
                ]))
        let now = Timestamp(Date()).secondsSinceEpoch
        let token = try clerk.sign(
            header: .object(["alg": .string("RS256"), "typ": .string("JWT"), "kid": .string(clerk.keyID)]),
            claims: .object([
                "sub": .string("user_st"), "sid": .string("sess_st"), "iss": .string(LocalEnvironment.clerkIssuer),
                "iat": .integer(now), "nbf": .integer(now - 10), "exp": .integer(now + 3_600), "v": .integer(2),
            ]))
        let (status, report) = try await Self.schemathesis(
            document: "account-api.json", url: function.url, headers: ["Authorization: Bearer \(token)"])
        #expect(status == 0, "\(report)\n\(function.log.suffix(4_000))")
        // The receipt's answer was among those checked against the schema.
        #expect(function.log.contains("\"GET /v1/exports/2026-01-01 200\""))

        // The query reaches the function through the real server (it once kept the path only,
        // and every range was the default 30 days).
        var request = URLRequest(url: URL(string: "v1/usage?from=2026-01-01&to=2026-01-03", relativeTo: function.url)!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let usage = try JSONValue.parse(data)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(usage["from"] == .string("2026-01-01") && usage["to"] == .string("2026-01-03") && usage["days"]?.arrayValue?.count == 3)
        #expect(function.process.isRunning)
        #expect(try await function.stop() == 0)
    }

    @Test(Peer.pythonVenv.trait)
    func authValidator_againstItsDocument() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let key = try await seedKeyedAccount(SQLiteDocumentStore(cluster.database), id: "acct_st", units: 1_000_000, pepper: Self.pepper)
        let function = try await RunningFunction(
            "auth-validator",
            environment: cluster.environment(
                "https://auth-validator.test",
                ["TOLLGATE_KEY_PEPPER": Self.pepper, "TOLLGATE_ENDPOINT_FEATURES": "/v1/priority=priorityQueue"]))
        let (status, report) = try await Self.schemathesis(
            document: "auth-validator.json", url: function.url, headers: ["X-API-Key: \(key)"])
        #expect(status == 0, "\(report)\n\(function.log.suffix(4_000))")
        #expect(function.process.isRunning)
        #expect(try await function.stop() == 0)
    }

    /// Runs `schemathesis run` to the end; returns its exit status and its report.
    static func schemathesis(document: String, url: URL, headers: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent(".venv/bin/schemathesis")
        process.currentDirectoryURL = scratchURL("schemathesis")
        try FileManager.default.createDirectory(at: process.currentDirectoryURL!, withIntermediateDirectories: true)
        process.arguments =
            [
                "--config-file", packageRoot.appendingPathComponent("docs/openapi/schemathesis.toml").path, "--no-color",
                "run", packageRoot.appendingPathComponent("docs/openapi/\(document)").path,
                "--url", url.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                "--checks", "all", "--max-examples", "40", "--seed", "20261129", "--workers", "1",
                "--request-timeout", "10", "--generation-database", "none",
            ] + headers.flatMap { ["--header", $0] }
        process.environment = ProcessInfo.processInfo.environment.merging([
            "SCHEMATHESIS_TELEMETRY": "false", "HYPOTHESIS_STORAGE_DIRECTORY": process.currentDirectoryURL!.path,
        ]) { _, given in given }
        let run = try await runToEnd(process, combined: true)
        return (run.status, String(decoding: run.output, as: UTF8.self))
    }
}
