import Foundation
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

/// The accounts journey through all nine functions as real executables (`tollgate serve
/// --processes`), once on the SQLite state file and once on Google's emulators: documents
/// on the Firestore emulator, messages on the Pub/Sub emulator with push subscriptions made
/// from the functions' declarations, objects on fake-gcs-server, tasks on serve's queue
/// (there is no Cloud Tasks emulator). The Pub/Sub emulator signs no push: serve signs each
/// with an ID token from the push service account, as a subscription's `oidcToken` makes
/// Pub/Sub do, and the functions refuse any push without one. Both runs end the same.
@Suite(Peer.firestoreEmulator.trait, Peer.pubSubEmulator.trait, Peer.fakeGCSServer.trait, .serialized)
struct SystemOnGoogleEmulatorsTests {
    static let user = "user_2TgAdaLovelace000001"
    static let customer = "cus_TgAlpha01"

    /// What a journey leaves, read through the ports.
    struct Outcome: Equatable, CustomStringConvertible {
        var tier: String
        var liveKeys: Int
        var ledgerRecords: Int
        var ledgerUnits: Int64
        var exportedRecords: Int64?
        var report: String?
        var meterValues: [String]

        var description: String {
            "tier \(tier), \(liveKeys) keys, ledger \(ledgerRecords)/\(ledgerUnits), exported \(exportedRecords.map(String.init) ?? "-"), report \(report ?? "-"), meter \(meterValues)"
        }
    }

    /// Where the functions' ports live, and how the test reads and publishes there.
    struct Backend {
        var arguments: [String] = []
        var environment: [String: String] = [:]
        var store: (_ statePath: String) throws -> any DocumentStore
        /// The publisher the API service would use, and the topic project, given serve's URL.
        var usagePublisher: (_ serveURL: String) throws -> any Publisher
        var close: () -> Void = {}
    }

    static func sqliteBackend() -> Backend {
        Backend(
            store: { SQLiteDocumentStore(try SQLiteDatabase(path: $0)) },
            usagePublisher: { url in
                // serve's own Pub/Sub REST front, as Google's clients reach it.
                try GoogleCloud(environment: ["PUBSUB_EMULATOR_HOST": String(url.dropFirst("http://".count))])
                    .pubsub("pubsub://\(LocalCloudNames.project)")
            })
    }

    static func emulatorBackend() async throws -> Backend {
        let firestore = try await GoogleEmulator.firestore.acquire()
        let pubSub = try await GoogleEmulator.pubSub.acquire()
        let storage = try await FakeGCSServer.start(buckets: ["tollgate-journey"])
        let environment = [
            "FIRESTORE_EMULATOR_HOST": firestore.host, "PUBSUB_EMULATOR_HOST": pubSub.host, "STORAGE_EMULATOR_HOST": storage.host,
        ]
        let cloud = GoogleCloud(environment: environment)
        return Backend(
            arguments: [
                "--store", "firestore://\(firestore.project)", "--pubsub", "pubsub://\(pubSub.project)", "--blobs", "gs://tollgate-journey",
            ],
            environment: environment, store: { _ in try cloud.firestore("firestore://\(firestore.project)") },
            usagePublisher: { _ in try cloud.pubsub("pubsub://\(pubSub.project)") },
            close: {
                storage.stop()
                pubSub.release()
                firestore.release()
            })
    }

    @Test func accountsJourney_onGooglesEmulators_endsAsOnTheSQLiteFakes() async throws {
        let onSQLite = try await journey(Self.sqliteBackend())
        let emulators = try await Self.emulatorBackend()
        defer { emulators.close() }
        let onEmulators = try await journey(emulators)
        #expect(onEmulators == onSQLite)
        // What the journey is meant to end with, on both.
        #expect(onSQLite.tier == "pro" && onSQLite.liveKeys == 1 && onSQLite.ledgerRecords == 3 && onSQLite.ledgerUnits == 12)
        #expect(onSQLite.exportedRecords == 3 && onSQLite.report == "reported 12" && onSQLite.meterValues == ["12"], "\(onSQLite)")
    }

    /// Day one (serve's clock started yesterday at 08:00): sign-up, checkout, a key, requests
    /// validated, usage through Pub/Sub. Day two (now): the scheduler's export of yesterday,
    /// its report task to Stripe, retention.
    func journey(_ backend: Backend) async throws -> Outcome {
        let folder = scratchURL("journey")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let state = folder.appendingPathComponent("state.db").path
        let wallNow = Int64(Date().timeIntervalSince1970)
        let yesterday = UTCDay(containing: Timestamp(secondsSinceEpoch: wallNow - 86_400))
        let dayOneStart = yesterday.start.adding(seconds: 8 * 3_600)
        let offset = dayOneStart.secondsSinceEpoch - wallNow
        let dayOneNow = { Int64(Date().timeIntervalSince1970) + offset }
        let store = try backend.store(state)

        let dayOne = try await ServeProcess(
            ["--processes", "--quiet", "--start", dayOneStart.rfc3339] + backend.arguments, environment: backend.environment, state: state)
        do {
            // Clerk: the user signs up.
            let signup = try Data(contentsOf: packageRoot.appendingPathComponent("events/clerk/payloads/user-created.json"))
            let svix = try SvixSigner(secret: try #require(LocalEnvironment.svixSecrets["current"]))
            let signed = svix.headers(id: "msg_journey_1", timestamp: dayOneNow(), body: signup)
            try await expectStatus(
                200, dayOne.url + "/clerk-webhook/", headers: Dictionary(uniqueKeysWithValues: signed.map { ($0.name, $0.value) }),
                body: signup)

            // The dashboard: a Checkout reference for the user's own account.
            let session = try await dayOne.tollgate(["session", "--user", Self.user]).trimmingCharacters(in: .whitespacesAndNewlines)
            let bearer = ["Authorization": "Bearer \(session)", "Content-Type": "application/json"]
            let minted = try await expectStatus(
                201, dayOne.url + "/account-api/v1/checkout-references", headers: bearer, body: Data("{}".utf8))
            let reference = try #require(try JSONValue.parse(minted)["clientReferenceId"]?.stringValue)

            // Stripe: Checkout completes with the reference, then the subscription is created.
            let checkout = try Self.stripeEvent(
                "checkout-session-completed.json", changing: ["client_reference_id": reference, "created": dayOneNow()])
            try await deliverStripe(checkout, to: dayOne, at: dayOneNow())
            try await deliverStripe(try Self.stripeEvent("subscription-created-pro.json"), to: dayOne, at: dayOneNow())
            _ = try await waitFor("the account on pro") {
                try await store.get(DocumentPath(collection: Account.collection, id: Self.user))?.decode(Account.self).tier == .pro
            }

            // A key, and requests the gateway asks the validator about.
            let created = try await expectStatus(
                201, dayOne.url + "/account-api/v1/keys", headers: bearer, body: Data(#"{"name":"production"}"#.utf8))
            let key = try #require(try JSONValue.parse(created)["key"]?.stringValue)
            for _ in 0..<3 {
                try await expectStatus(
                    200, dayOne.url + "/auth-validator/", headers: ["X-API-Key": key, "X-Tollgate-Cost": "4"], body: Data())
            }

            // The API service reports what it served, through Pub/Sub.
            let publisher = try backend.usagePublisher(dayOne.url)
            for index in 1...3 {
                let event = JSONValue.object([
                    "requestId": .string("journey-\(index)"), "accountId": .string(Self.user), "keyId": .string("tg_live_journey"),
                    "time": .string(dayOneStart.rfc3339), "endpoint": .string("/v1/graphs"), "units": .integer(4),
                ])
                _ = try await publisher.publish(OutgoingMessage(data: Array(event.rendered().utf8)), to: Topic.usageEvents)
            }
            _ = try await waitFor("three ledger entries") {
                try await store.query(DocumentQuery(collection: UsageRecord.collection)).count == 3
            }
        } catch {
            _ = try? await dayOne.stop()
            throw error
        }
        #expect(try await dayOne.stop() == 0)

        // Day two: the export of yesterday, its report to Stripe, retention.
        let dayTwo = try await ServeProcess(["--processes", "--quiet"] + backend.arguments, environment: backend.environment, state: state)
        do {
            #expect(try await dayTwo.tollgate(["trigger", "usage-export"]).contains("usage-export"))
            _ = try await waitFor("yesterday's export") {
                try await store.get(DocumentPath(collection: ExportState.collection, id: yesterday.description)) != nil
            }
            let reportPath = try DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: yesterday, accountId: Self.user))
            _ = try await waitFor("the report to Stripe") { try await store.get(reportPath) != nil }
            #expect(try await dayTwo.tollgate(["trigger", "cleanup"]).contains("cleanup: ran"))
        } catch {
            _ = try? await dayTwo.stop()
            throw error
        }
        let meter = try await dayTwo.dump()["stripeMeterEvents"]?.objectValue?.values.compactMap { event -> String? in
            event["customer"]?.stringValue == Self.customer ? event["value"]?.stringValue : nil
        }
        #expect(try await dayTwo.stop() == 0)

        let account = try #require(try await store.get(DocumentPath(collection: Account.collection, id: Self.user))?.decode(Account.self))
        let keys = try await store.query(DocumentQuery(collection: APIKeyRecord.collection).filter("accountId", .equal, .string(Self.user)))
        let ledger = try await store.query(DocumentQuery(collection: UsageRecord.collection))
        let units = ledger.reduce(Int64(0)) { total, record in
            if case .integer(let units) = record.fields["units"] { return total + units }
            return total
        }
        let export = try await store.get(DocumentPath(collection: ExportState.collection, id: yesterday.description))?.decode(
            ExportState.self)
        let report = try await store.get(
            DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: yesterday, accountId: Self.user)))?.decode(
                UsageReport.self)
        return Outcome(
            tier: account.tier.rawValue, liveKeys: keys.filter { $0.fields["revoked"] == nil }.count, ledgerRecords: ledger.count,
            ledgerUnits: units, exportedRecords: export?.records, report: report.map { "\($0.status) \($0.value)" },
            meterValues: (meter ?? []).sorted())
    }

    /// A Stripe event of the fixtures with top-level fields of its object changed.
    static func stripeEvent(_ file: String, changing fields: [String: Any] = [:]) throws -> Data {
        let url = packageRoot.appendingPathComponent("events/stripe/payloads/\(file)")
        var event = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var data = try #require(event["data"] as? [String: Any])
        var object = try #require(data["object"] as? [String: Any])
        object.merge(fields) { _, new in new }
        data["object"] = object
        event["data"] = data
        return try JSONSerialization.data(withJSONObject: event)
    }

    func deliverStripe(_ body: Data, to serve: ServeProcess, at time: Int64) async throws {
        let secret = try #require(LocalEnvironment.webhookSecrets["current"])
        let signature = StripeSigner(secret: secret).header(timestamp: time, body: body)
        try await expectStatus(
            200, serve.url + "/stripe-webhook/", headers: ["Stripe-Signature": signature, "Content-Type": "application/json"], body: body)
    }

    @discardableResult
    func expectStatus(_ status: Int, _ url: String, headers: [String: String], body: Data) async throws -> Data {
        let (answered, answer) = try await post(try #require(URL(string: url)), body: body, headers: headers)
        try #require(answered == status, "POST \(url): \(answered) \(String(decoding: answer, as: UTF8.self))")
        return answer
    }

    /// Polls `condition` until it holds (the functions run on the wall clock).
    func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws -> Bool {
        for _ in 0..<300 {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
        return false
    }
}
