import Foundation
import Logging
import Testing
import TollgateEmulator
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

/// The deployed shape: the real usage-export, usage-report and cleanup executables, each
/// on its own port over one SQLite state, called as Cloud Scheduler and Cloud Tasks call
/// them (their headers, an OIDC token the runtime verifies against a JWKS file), with
/// usage-report talking to the Stripe fake over libcurl.
@Suite(.serialized) struct BillingExecutablesTests {
    @Test func exportThenReportThenCleanup_asTheCloudCallsThem() async throws {
        let directory = scratchURL("billing")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = try SQLiteDatabase(path: directory.appendingPathComponent("state.db").path)
        let store = SQLiteDocumentStore(database)
        // Two days ago: over and settled, and within the 35 days Stripe accepts.
        let day = UTCDay(containing: SystemClock().now()).previous.previous
        try await seedLedger(store, day: day, count: 300, accounts: 2)
        for index in 0..<2 { try await seedBilledAccount(store, index: index) }
        let stripeState = try SQLiteDatabase(path: directory.appendingPathComponent("stripe.db").path)
        let stripe = StripeFakeServer(stripeState)
        let stripeURL = try await stripe.start(logger: Logger(label: "fake", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { stripe.stop() }

        let issuer = sharedIssuer
        let jwks = directory.appendingPathComponent("jwks.json")
        try Data(issuer.jwksDocument.rendered().utf8).write(to: jwks)
        func environment(_ audience: String, _ extra: [String: String]) -> [String: String] {
            extra.merging([
                "TOLLGATE_STORE": "sqlite://\(database.path)", "TOLLGATE_AUDIENCE": audience,
                "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
                "TOLLGATE_OIDC_ISSUERS": LocalOIDCIssuer.issuer, "TOLLGATE_OIDC_JWKS": jwks.absoluteString,
            ]) { a, _ in a }
        }
        func bearer(_ audience: String) throws -> String {
            "Bearer " + (try issuer.token(audience: audience, issuedAt: Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))))
        }

        let export = try await RunningFunction(
            "usage-export",
            environment: environment(
                "https://usage-export.test",
                [
                    "TOLLGATE_EXPORT_SIGNING_KEY": LocalEnvironment.exportSigningKey,
                    "TOLLGATE_USAGE_REPORT_URL": "https://usage-report.test",
                ]))
        let scheduled = CloudSchedulerRequest(jobName: "usage-export", scheduleTime: SystemClock().now()).headers
        let unauthenticated = try await post(export.url, body: Data(), headers: scheduled)
        #expect(unauthenticated.0 == 401, "Scheduler calls carry a token")
        let (exported, exportBody) = try await post(
            export.url, body: Data(), headers: scheduled.merging(["Authorization": try bearer("https://usage-export.test")]) { a, _ in a })
        #expect(exported == 200, "\(String(decoding: exportBody, as: UTF8.self)) \(export.log)")
        #expect(try JSONValue.parse(exportBody)["exported"]?.arrayValue?.first?["records"]?.integerValue == 300)
        let code = try await export.stop()
        #expect(code == 0, "\(String(describing: code)) \(export.log)")

        let tasks = try await SQLiteTaskQueue(database).tasks()
        #expect(tasks.count == 2)
        let report = try await RunningFunction(
            "usage-report",
            environment: environment(
                "https://usage-report.test", ["STRIPE_API_KEY": StripeFakeServer.apiKey, "TOLLGATE_STRIPE_API_BASE": stripeURL]))
        for (queue, task) in tasks {
            let metadata = CloudTasksRequest(queueName: queue, taskName: task.name ?? "", retryCount: 0, executionCount: 0, eta: 0).headers
            let headers = metadata.merging(task.headers) { a, _ in a }.merging(["Authorization": try bearer(task.url)]) { a, _ in a }
            #expect(task.url == "https://usage-report.test")
            let (status, body) = try await post(report.url, body: Data(task.body), headers: headers)
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self)) \(report.log)")
        }
        #expect(try await report.stop() == 0)
        let letters = try await store.query(DocumentQuery(collection: DeadLetter.collection))
        #expect(letters.isEmpty, "\(letters.map(\.fields))")
        #expect(!report.log.contains(StripeFakeServer.apiKey))
        let events = try await SQLiteStripeFake(stripeState).meterEvents()
        #expect(events.map(\.identifier) == ["tg-acct_0-api_units-\(day)", "tg-acct_1-api_units-\(day)"])
        let manifest = try ExportManifest(
            parsing: try await SQLiteBlobStore(database).read("usage/\(day.pathComponent)/manifest.json").data)
        #expect(events.map(\.value) == manifest.accounts.map(\.units))

        let cleanup = try await RunningFunction(
            "cleanup", environment: environment("https://cleanup.test", ["TOLLGATE_RETENTION_LEDGER_DAYS": "1"]))
        let (cleaned, cleanBody) = try await post(
            cleanup.url, body: Data(),
            headers: CloudSchedulerRequest(jobName: "cleanup", scheduleTime: SystemClock().now()).headers.merging([
                "Authorization": try bearer("https://cleanup.test")
            ]) { a, _ in a })
        #expect(cleaned == 200, "\(cleanup.log)")
        #expect(try JSONValue.parse(cleanBody)["ledgerEntries"]?.integerValue == 300, "the day is exported, verified and past 1 day")
        #expect(try JSONValue.parse(cleanBody)["deadLetters"]?.integerValue == 0)
        #expect(try await cleanup.stop() == 0)
    }
}
