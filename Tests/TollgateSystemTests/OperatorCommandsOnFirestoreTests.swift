import Foundation
import Testing
import TollgateEmulator
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

/// The runbook's commands on a `firestore://` store (Google's Firestore emulator standing
/// in for production, its Pub/Sub emulator beside it): what an operator runs against the
/// real store works through the same drivers the functions use.
@Suite(Peer.firestoreEmulator.trait, Peer.pubSubEmulator.trait) struct OperatorCommandsOnFirestoreTests {
    @Test func deadLettersList_andKeysCreateListRevoke_workOnFirestore() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let url = "firestore://\(firestore.project)"
        let environment = [
            "FIRESTORE_EMULATOR_HOST": firestore.host, "TOLLGATE_STORE": url,
            "TOLLGATE_KEY_PEPPER": "operator-test-pepper-0123456789abcdef",
        ]
        let store = try GoogleCloud(environment: environment).firestore(url)
        let letter = DeadLetter(
            function: "stripe-webhook", trigger: "http", reason: "price price_x is not mapped", body: Data("{}".utf8),
            metadata: ["header:Content-Type": "application/json"], received: Timestamp(secondsSinceEpoch: 1_767_225_600))
        try await store.create(
            try DocumentPath(collection: DeadLetter.collection, id: "stripe-webhook-0a1b"), try FieldValueEncoder().encode(letter))

        let (listed, output, errors) = try await runTollgate(["dead-letters", "list", "--store", url], environment: environment)
        #expect(listed == 0, "\(errors)")
        #expect(
            output.contains("stripe-webhook-0a1b") && output.contains("price price_x is not mapped") && output.contains("1 dead letter"))

        let (created, key, createErrors) = try await runTollgate(
            ["keys", "create", "--account", "acct_ops", "--mode", "test"], environment: environment)
        #expect(created == 0, "\(createErrors)")
        let (keysListed, keys, _) = try await runTollgate(["keys", "list", "--account", "acct_ops"], environment: environment)
        #expect(keysListed == 0 && keys.contains("tg_test_") && keys.contains("active"), "\(keys)")
        let (revoked, _, revokeErrors) = try await runTollgate(
            ["keys", "revoke", key.trimmingCharacters(in: .whitespacesAndNewlines)], environment: environment)
        #expect(revoked == 0, "\(revokeErrors)")
        let (_, afterRevoke, _) = try await runTollgate(["keys", "list", "--account", "acct_ops"], environment: environment)
        #expect(afterRevoke.contains("revoked") && !afterRevoke.contains("active"), "\(afterRevoke)")
    }

    /// The runbook's dead-letter path on production: a real stripe-webhook on Firestore
    /// dead-letters a subscription to a price no tier maps; the operator shows it, replays
    /// it (refused while the cause stands), fixes the setting and replays it from the
    /// service's own environment: it is applied, its change published, the letter gone.
    @Test func aDeadLetter_isShown_andReplayedFromTheServicesEnvironment_onceTheCauseIsFixed() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let pubSub = try await GoogleEmulator.pubSub.acquire()
        defer { pubSub.release() }
        let changes = try await PubSubEmulatorInbox(pubSub, topic: Topic.entitlementsChanged)
        let url = "firestore://\(firestore.project)"
        let secret = "whsec_operator_test_local_value_only"
        let service = [
            "FIRESTORE_EMULATOR_HOST": firestore.host, "TOLLGATE_STORE": url, "PUBSUB_EMULATOR_HOST": pubSub.host,
            "TOLLGATE_PUBSUB": "pubsub://\(pubSub.project)", "STRIPE_WEBHOOK_SECRET": secret,
            "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!, "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
        ]

        // Server-set metadata links the subscription to its account.
        let payload = packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-unmapped-price.json")
        var event = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: payload)) as? [String: Any])
        var data = try #require(event["data"] as? [String: Any])
        var subscription = try #require(data["object"] as? [String: Any])
        subscription["metadata"] = ["tollgate_account_id": "acct_ops"]
        data["object"] = subscription
        event["data"] = data
        let body = try JSONSerialization.data(withJSONObject: event)
        let webhook = try await RunningFunction("stripe-webhook", environment: service)
        let signature = StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let (status, _) = try await post(webhook.url, body: body, headers: ["Stripe-Signature": signature])
        #expect(status == 200, "\(webhook.log)")
        #expect(try await webhook.stop() == 0)

        let (listed, list, _) = try await runTollgate(["dead-letters", "list"], environment: service)
        #expect(listed == 0 && list.contains("1 dead letter"), "\(list)")
        let id = try #require(list.split(separator: " ").first.map(String.init))
        let (shown, letter, showErrors) = try await runTollgate(["dead-letters", "show", id], environment: service)
        #expect(shown == 0, "\(showErrors)")
        #expect(
            letter.contains("function:  stripe-webhook") && letter.contains("price_unknown_annual")
                && letter.contains("evt_1TgSubUnmappedPrice"))

        let (stillPoison, refused, _) = try await runTollgate(["dead-letters", "replay", id], environment: service)
        #expect(stillPoison == 1 && refused.contains("the dead letter stays"), "\(refused)")

        var fixed = service
        fixed["TOLLGATE_PRICE_TIERS"] = LocalEnvironment.priceTiers + ",price_unknown_annual=pro"
        let (replayed, output, errors) = try await runTollgate(["dead-letters", "replay", id], environment: fixed)
        #expect(replayed == 0 && output.contains("handled (200)"), "\(output) \(errors)")
        let (got, account, _) = try await runTollgate(["state", "get", "accounts/acct_ops"], environment: service)
        #expect(got == 0 && account.contains("\"pro\""), "\(account)")
        #expect(try await changes.pullAll().count == 1, "the change is published once, by the replay")
        let (_, after, _) = try await runTollgate(["dead-letters", "list"], environment: service)
        #expect(after.contains("0 dead letters"))
    }

    @Test func replay_fromAnEnvironmentTheFunctionCannotStartFrom_namesWhatIsMissing() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let url = "firestore://\(firestore.project)"
        let environment = ["FIRESTORE_EMULATOR_HOST": firestore.host, "TOLLGATE_STORE": url]
        let letter = DeadLetter(
            function: "stripe-webhook", trigger: "http", reason: "price price_x is not mapped", body: Data("{}".utf8), metadata: [:],
            received: Timestamp(secondsSinceEpoch: 1_767_225_600))
        let store = try GoogleCloud(environment: environment).firestore(url)
        try await store.create(
            try DocumentPath(collection: DeadLetter.collection, id: "stripe-webhook-0c0d"), try FieldValueEncoder().encode(letter))
        let (status, _, errors) = try await runTollgate(["dead-letters", "replay", "stripe-webhook-0c0d"], environment: environment)
        #expect(status != 0 && errors.contains("STRIPE_WEBHOOK_SECRET"), "\(errors)")
        let (missing, _, unknown) = try await runTollgate(["dead-letters", "show", "stripe-webhook-ffff"], environment: environment)
        #expect(missing != 0 && unknown.contains("no dead letter stripe-webhook-ffff"), "\(unknown)")
    }
}

/// The export commands of the runbook on production's ports: the ledger on Firestore (its
/// emulator), objects on Cloud Storage (fake-gcs-server), report tasks in a local queue
/// (there is no Cloud Tasks emulator).
@Suite(Peer.firestoreEmulator.trait, Peer.fakeGCSServer.trait) struct ExportCommandsOnFirestoreTests {
    @Test func exportVerifyReconcileAndCleanupDryRun_workOnFirestoreAndCloudStorage() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let storage = try await FakeGCSServer.start(buckets: ["tollgate-exports"])
        defer { storage.stop() }
        let tasks = try temporaryDatabase()
        let url = "firestore://\(firestore.project)"
        let environment = [
            "FIRESTORE_EMULATOR_HOST": firestore.host, "TOLLGATE_STORE": url, "STORAGE_EMULATOR_HOST": storage.host,
            "TOLLGATE_BLOBS": "gs://tollgate-exports", "TOLLGATE_TASKS": "sqlite://\(tasks.path)",
            "TOLLGATE_EXPORT_SIGNING_KEY": LocalEnvironment.exportSigningKey, "TOLLGATE_USAGE_REPORT_URL": "https://usage-report.example/",
        ]
        let store = try GoogleCloud(environment: environment).firestore(url)
        try await seedLedger(store, day: UTCDay("2026-01-01")!, count: 30)

        for _ in 0..<2 {
            let (exported, out, errors) = try await runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
            #expect(exported == 0, "\(out)\(errors)")
        }
        #expect(try await SQLiteTaskQueue(tasks).tasks().count == 3, "one report task per account, once")
        let (verified, verification, _) = try await runTollgate(
            ["verify-export", "--from", "2026-01-01", "--to", "2026-01-01"], environment: environment)
        #expect(verified == 0 && verification.contains("2026-01-01  valid"), "\(verification)")
        // Nothing reported yet: reconcile says so for each account and exits 1.
        let (reconciled, table, _) = try await runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(reconciled == 1 && table.components(separatedBy: "not reported").count == 4, "\(table)")

        let before = try await store.query(DocumentQuery(collection: UsageRecord.collection)).count
        let (cleaned, counts, cleanupErrors) = try await runTollgate(["cleanup", "--dry-run"], environment: environment)
        #expect(cleaned == 0 && counts.contains("would be deleted"), "\(counts)\(cleanupErrors)")
        #expect(try await store.query(DocumentQuery(collection: UsageRecord.collection)).count == before)
    }
}
