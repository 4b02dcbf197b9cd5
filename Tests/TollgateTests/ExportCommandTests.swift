import Foundation
import Testing
import TollgateExport
import TollgateModel
import TollgateSQLite

/// `tollgate export`, `verify-export`, `reconcile` and `cleanup --dry-run` on one state.
@Suite(.serialized) struct ExportCommandTests {
    @Test func exportVerifyReconcileAndDryRun_sayWhatIsTrue_andExitAccordingly() async throws {
        let database = try temporaryDatabase()
        let store = SQLiteDocumentStore(database)
        let day = UTCDay("2026-01-01")!
        try await seedLedger(store, day: day, count: 40, accounts: 2)
        let environment = ["TOLLGATE_STORE": "sqlite://\(database.path)", "PATH": "/usr/bin:/bin"]

        let (exported, exportOut, _) = try runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
        #expect(exported == 0)
        #expect(exportOut.contains("2026-01-01  exported  40 records"))
        let (again, againOut, _) = try runTollgate(["export", "run", "--date", "2026-01-01"], environment: environment)
        #expect(again == 0 && againOut.contains("already exported"))

        let (verified, verifyOut, _) = try runTollgate(
            ["verify-export", "--from", "2026-01-01", "--to", "2026-01-02"], environment: environment)
        #expect(verified == 1, "the second day was never exported")
        #expect(verifyOut.contains("2026-01-01  valid") && verifyOut.contains("2026-01-02  missing"))

        // Nothing reported yet: both accounts differ.
        let (unreported, unreportedOut, _) = try runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
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
        let (reconciled, reconciledOut, _) = try runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(reconciled == 0, "\(reconciledOut)")

        // A record stamped into an exported day (which the recorder never does) is caught.
        let stray = UsageRecord(
            requestId: "stray", accountId: "acct_0", keyId: nil, time: day.start, endpoint: "/", units: 5, recorded: day.start)
        try await store.create(try DocumentPath(collection: UsageRecord.collection, id: "stray"), try FieldValueEncoder().encode(stray))
        let (changed, changedOut, _) = try runTollgate(["reconcile", "--date", "2026-01-01"], environment: environment)
        #expect(changed == 1 && changedOut.contains("ledger changed since export"))

        let (dry, dryOut, _) = try runTollgate(
            ["cleanup", "--dry-run"], environment: environment.merging(["TOLLGATE_RETENTION_LEDGER_DAYS": "1"]) { a, _ in a })
        #expect(dry == 0)
        #expect(dryOut.contains("ledgerEntries  41  would be deleted"), "\(dryOut)")
        #expect(try await store.query(UsageRecord.recorded(during: day)).count == 41, "a dry run deletes nothing")
    }
}
