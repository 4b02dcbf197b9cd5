import Foundation
import Testing
import TollgateEmulator
import TollgateExport
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// `tollgate export`, `verify-export`, `reconcile` and `cleanup --dry-run` on one state.
@Suite(.serialized) struct ExportCommandTests {
    @Test func exportVerifyReconcileAndDryRun_sayWhatIsTrue_andExitAccordingly() async throws {
        let database = try temporaryDatabase()
        let store = SQLiteDocumentStore(database)
        let day = UTCDay("2026-01-01")!
        try await seedLedger(store, day: day, count: 40, accounts: 2)
        let environment = ["TOLLGATE_STORE": "sqlite://\(database.path)", "PATH": "/usr/bin:/bin"]

        let (exported, exportOut, _) = try await runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
        #expect(exported == 0)
        #expect(exportOut.contains("2026-01-01  exported  40 records"))
        let (again, againOut, _) = try await runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
        #expect(again == 0 && againOut.contains("already exported"))

        let (verified, verifyOut, _) = try await runTollgate(
            ["verify-export", "--from", "2026-01-01", "--to", "2026-01-02"], environment: environment)
        #expect(verified == 1, "the second day was never exported")
        #expect(verifyOut.contains("2026-01-01  valid") && verifyOut.contains("2026-01-02  missing"))

        // Nothing reported yet: both accounts differ.
        let (unreported, unreportedOut, _) = try await runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(unreported == 1)
        #expect(unreportedOut.components(separatedBy: "not reported").count - 1 == 2)
        let manifest = try ExportManifest(parsing: try await SQLiteBlobStore(database).read("usage/2026/01/01/manifest.json").data)
        for total in manifest.accounts {
            let report = UsageReport(
                day: day, accountId: total.accountId, status: "reported", customerId: "cus_x", eventName: "api_units",
                identifier: "tg-\(total.accountId)-api_units-2026-01-01", value: total.units, records: total.records,
                reported: day.end, attempt: 1)
            try await store.create(
                try DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: day, accountId: total.accountId)),
                try FieldValueEncoder().encode(report))
        }
        let (reconciled, reconciledOut, _) = try await runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(reconciled == 0, "\(reconciledOut)")

        // A record stamped into an exported day (which the recorder never does) is caught.
        let stray = UsageRecord(
            requestId: "stray", accountId: "acct_0", keyId: nil, time: day.start, endpoint: "/", units: 5, recorded: day.start)
        try await store.create(try DocumentPath(collection: UsageRecord.collection, id: "stray"), try FieldValueEncoder().encode(stray))
        let (changed, changedOut, _) = try await runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(changed == 1 && changedOut.contains("ledger changed since export"))

        let (dry, dryOut, _) = try await runTollgate(
            ["cleanup", "--dry-run"], environment: environment.merging(["TOLLGATE_RETENTION_LEDGER_DAYS": "1"]) { a, _ in a })
        #expect(dry == 0)
        #expect(dryOut.contains("ledgerEntries  41  would be deleted"), "\(dryOut)")
        #expect(try await store.query(UsageRecord.recorded(during: day)).count == 41, "a dry run deletes nothing")
    }

    /// What an operator hands customers to pin: the document of the key that signs, never
    /// the private key; a key that is not one is refused by name, without echoing it.
    @Test func exportPublicKey_printsTheKeyDocumentOfTheSigningKey() async throws {
        let key = ExportSigner.generate()
        let environment = ["TOLLGATE_STORE": "firestore://project", "TOLLGATE_EXPORT_SIGNING_KEY": key]
        let (status, printed, _) = try await runTollgate(["export", "public-key"], environment: environment)
        #expect(status == 0)
        #expect(Array(printed.utf8) == (try ExportSigner(base64: key)).publicKey.document)
        #expect(!printed.contains(key))
        let bad = "bm90LWEta2V5"
        let (refused, _, said) = try await runTollgate(
            ["export", "public-key"], environment: environment.merging(["TOLLGATE_EXPORT_SIGNING_KEY": bad]) { $1 })
        #expect(refused != 0 && said.contains("TOLLGATE_EXPORT_SIGNING_KEY") && !said.contains(bad), "\(said)")
        // Without a setting, on the default local state: the key serve made for it.
        let folder = scratchURL("default-state")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(".tollgate"), withIntermediateDirectories: true)
        let served = try LocalEnvironment.exportSigningKey(beside: folder.appendingPathComponent(".tollgate/state.db").path)
        let (local, localDocument, _) = try await runTollgate(["export", "public-key"], environment: [:], in: folder)
        let servedDocument = try ExportSigner(base64: served).publicKey.document
        #expect(local == 0 && Array(localDocument.utf8) == servedDocument)
        let (unset, _, missing) = try await runTollgate(["export", "public-key"], environment: ["TOLLGATE_STORE": "firestore://project"])
        #expect(unset != 0 && missing.contains("TOLLGATE_EXPORT_SIGNING_KEY is not set"), "\(missing)")
    }

    @Test func verifyExport_tellsAMissingObjectFromOneRetentionRemoved() async throws {
        let database = try temporaryDatabase()
        let blobs = SQLiteBlobStore(database)
        try await seedLedger(SQLiteDocumentStore(database), day: UTCDay("2026-01-01")!, count: 10)
        try await seedLedger(SQLiteDocumentStore(database), day: UTCDay("2026-01-02")!, count: 10)
        let environment = ["TOLLGATE_STORE": "sqlite://\(database.path)", "PATH": "/usr/bin:/bin"]
        #expect(try await runTollgate(["export", "run"], environment: environment).0 == 0)
        let verify = ["verify-export", "--from", "2026-01-01", "--to", "2026-01-02"]
        #expect(try await runTollgate(verify, environment: environment).0 == 0)

        // Someone deletes a data object: missing, a failure.
        try await blobs.delete("usage/2026/01/02/part-00000.ndjson.gz", ifGenerationMatch: nil)
        let (missing, missingOut, _) = try await runTollgate(verify, environment: environment)
        #expect(missing == 1 && missingOut.contains("2026-01-02  missing  usage/2026/01/02/part-00000.ndjson.gz is missing"))

        // Retention removes day 1's objects on purpose: expired, not a failure; the manifests stay.
        let retention = environment.merging(["TOLLGATE_RETENTION_EXPORT_DAYS": "1"]) { a, _ in a }
        let (cleaned, cleanedOut, _) = try await runTollgate(["cleanup"], environment: retention)
        #expect(cleaned == 0 && cleanedOut.contains("exportObjects  1  deleted"), "\(cleanedOut)")
        #expect(try await blobs.attributes("usage/2026/01/01/part-00000.ndjson.gz") == nil)
        #expect(try await blobs.attributes("usage/2026/01/01/manifest.json") != nil)
        let (_, afterOut, _) = try await runTollgate(["verify-export", "--from", "2026-01-01"], environment: environment)
        #expect(afterOut.contains("2026-01-01  expired"), "\(afterOut)")
        #expect(try await runTollgate(["verify-export", "--from", "2026-01-01"], environment: environment).0 == 0)
        #expect(try await runTollgate(["verify-export", "--from", "2026-13-01"], environment: environment).0 != 0)
    }

    /// The deployable path with one real Google peer: blobs on Cloud Storage (the driver
    /// against fake-gcs-server), the rest on SQLite, chosen by URL alone.
    @Test(Peer.fakeGCSServer.trait) func exportAndVerify_withBlobsOnCloudStorage_andTheRestOnSQLite() async throws {
        let server = try await FakeGCSServer.start(buckets: ["tollgate-exports"])
        defer { server.stop() }
        let database = try temporaryDatabase()
        try await seedLedger(SQLiteDocumentStore(database), day: UTCDay("2026-01-01")!, count: 30)
        let environment = [
            "TOLLGATE_STORE": "sqlite://\(database.path)", "TOLLGATE_BLOBS": "gs://tollgate-exports",
            "STORAGE_EMULATOR_HOST": server.host, "PATH": "/usr/bin:/bin",
        ]
        let (exported, out, err) = try await runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
        #expect(exported == 0, "\(out)\(err)")
        let (verified, verifyOut, _) = try await runTollgate(
            ["verify-export", "--from", "2026-01-01", "--to", "2026-01-01"], environment: environment)
        #expect(verified == 0 && verifyOut.contains("2026-01-01  valid"), "\(verifyOut)")
        // The objects are in the bucket, not in the SQLite file.
        let storage = try GoogleCloud(environment: ["STORAGE_EMULATOR_HOST": server.host]).storage("gs://tollgate-exports")
        let names = try await storage.list(prefix: "usage/2026/01/01/", pageSize: 100, pageToken: nil).names
        #expect(names.contains("usage/2026/01/01/manifest.json") && names.contains("usage/2026/01/01/part-00000.ndjson.gz"))
        #expect(try await SQLiteBlobStore(database).list(prefix: "usage/", pageSize: 10, pageToken: nil).names.isEmpty)
        // An unknown scheme names the variable at fault.
        let (refused, _, refusal) = try await runTollgate(
            ["export", "run", "--date", "2026-01-01"], environment: environment.merging(["TOLLGATE_BLOBS": "s3://bucket"]) { _, new in new }
        )
        #expect(refused != 0 && refusal.contains("TOLLGATE_BLOBS"), "\(refusal)")
    }
}
