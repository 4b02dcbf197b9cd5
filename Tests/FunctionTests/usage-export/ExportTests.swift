import Crypto
import Foundation
import Testing
import TollgateExport
import TollgateModel
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import UsageExport

@Suite struct ExportTests {
    static let day = UTCDay("2026-01-01")!
    static let signer = exportTestSigner

    struct Setup {
        let database: SQLiteDatabase
        let exporter: UsageExporter
        var store: SQLiteDocumentStore { SQLiteDocumentStore(database) }
        var blobs: SQLiteBlobStore { SQLiteBlobStore(database) }
    }

    func setup(partRecords: Int = 7_000, signer: ExportSigner = signer, database: SQLiteDatabase? = nil) throws -> Setup {
        let database = try database ?? temporaryDatabase(clock: FixedClock(time: Timestamp(secondsSinceEpoch: 1_767_400_000)))
        let exporter = UsageExporter(
            configuration: .init(partRecords: partRecords, pageSize: 500, reportQueue: "usage-reports", reportURL: "http://report.local/"),
            store: SQLiteDocumentStore(database), blobs: SQLiteBlobStore(database), tasks: SQLiteTaskQueue(database), signer: signer,
            clock: database.clock)
        return Setup(database: database, exporter: exporter)
    }

    @Test func taskBackoff_doublesMaxDoublingsTimesThenGrowsLinearly_cappedAtMaxBackoff() {
        let config = TaskRetryConfig(maxAttempts: 10, minBackoffSeconds: 10, maxBackoffSeconds: 300, maxDoublings: 3)
        #expect((1...8).map(config.backoff(retry:)) == [10, 20, 40, 80, 160, 240, 300, 300])
        #expect(config.allowsAnother(after: 9) && !config.allowsAnother(after: 10))
        #expect(TaskRetryConfig(maxAttempts: -1).allowsAnother(after: 1_000))
    }

    @Test func utcDay_parsesOnlyRealDates() {
        #expect(UTCDay("2026-02-28")?.next.description == "2026-03-01")
        #expect(UTCDay("2024-02-29") != nil)
        for bad in ["2026-02-30", "2026-13-01", "2026-1-01", "20260101", "2026-01-01T00:00:00Z", ""] {
            #expect(UTCDay(bad) == nil, "\(bad)")
        }
        #expect(UTCDay(containing: Timestamp(rfc3339: "2026-01-01T23:59:59.999999Z")!).description == "2026-01-01")
    }

    @Test func gzip_roundTripsAndIsDeterministic() throws {
        let input = (0..<20_000).map { "{\"n\":\($0)}\n" }.joined()
        func compress() throws -> [UInt8] {
            let compressor = try GzipCompressor()
            var out: [UInt8] = []
            for line in input.split(separator: "\n", omittingEmptySubsequences: false) {
                try compressor.compress(Array((line + "\n").utf8), into: &out)
            }
            try compressor.finish(into: &out)
            return out
        }
        let first = try compress()
        #expect(try compress() == first)
        #expect(first.prefix(2) == [0x1F, 0x8B])
        let decompressor = try GzipDecompressor()
        var plain: [UInt8] = []
        try decompressor.decompress(first, into: &plain)
        #expect(decompressor.ended)
        #expect(String(decoding: plain, as: UTF8.self) == input + "\n")
    }

    @Test func manifest_canonicalBytesParseBackToTheSameManifest() throws {
        let manifest = ExportManifest(
            day: Self.day, recordedFrom: Self.day.start, recordedUntil: Self.day.end,
            previous: .init(day: Self.day.previous, sha256: String(repeating: "ab", count: 32)),
            objects: [
                .init(
                    kind: "usage", name: "usage/2026/01/01/part-00000.ndjson.gz", sha256: String(repeating: "cd", count: 32), bytes: 10,
                    records: 2, units: 5, firstTime: Self.day.start, lastTime: Self.day.start)
            ], accounts: [.init(accountId: "acct_1", records: 2, units: 5)], keyId: "k1")
        #expect(try ExportManifest(parsing: manifest.canonicalBytes) == manifest)
        #expect(manifest.canonicalBytes.last == 0x0A)
    }

    @Test func export_streamsPartsThatHoldEveryRecordOnce_andVerifies() async throws {
        let setup = try setup()
        try await seedLedger(setup.store, day: Self.day, count: 20_000, late: 30)
        guard case .exported(let manifest, _, let tasks) = try await setup.exporter.export(Self.day) else {
            Issue.record("expected an export")
            return
        }
        #expect(
            manifest.objects.map(\.name) == [
                "usage/2026/01/01/part-00000.ndjson.gz", "usage/2026/01/01/part-00001.ndjson.gz", "usage/2026/01/01/part-00002.ndjson.gz",
                "usage/2026/01/01/late-00000.ndjson.gz",
            ])
        #expect(manifest.records == 20_000)
        #expect(tasks == 3)
        var ids = Set<String>()
        for object in manifest.objects {
            let stored = try await setup.blobs.read(object.name)
            #expect(Hex.encode(SHA256.hash(data: stored.data)) == object.sha256)
            var plain: [UInt8] = []
            try GzipDecompressor().decompress(stored.data, into: &plain)
            let lines = plain.split(separator: 0x0A)
            #expect(Int64(lines.count) == object.records)
            for line in lines { ids.insert(try #require(try JSONValue.parse(Data(line))["requestId"]?.stringValue)) }
        }
        #expect(ids.count == 20_000)
        #expect(manifest.accounts.map(\.units).reduce(0, +) == manifest.objects.map(\.units).reduce(0, +))
        #expect(manifest.accounts.map(\.lateRecords).reduce(0, +) == 30)
        let verifier = ExportVerifier(blobs: setup.blobs, layout: ExportLayout(), trustedKeys: [Self.signer.publicKey])
        #expect(try await verifier.verify(Self.day).verdict == .valid)
        guard case .alreadyComplete = try await setup.exporter.export(Self.day) else {
            Issue.record("a completed day must be left alone")
            return
        }
    }

    @Test func rerun_afterTheRecordOfCompletionIsLost_producesTheSameManifest() async throws {
        let setup = try setup()
        try await seedLedger(setup.store, day: Self.day, count: 2_000)
        guard case .exported(_, let first, _) = try await setup.exporter.export(Self.day) else {
            Issue.record("the first run did not export")
            return
        }
        // As if the run died after writing everything but before recording completion.
        try await setup.store.commit([Write.delete(try DocumentPath(collection: ExportState.collection, id: Self.day.description))])
        guard case .exported(_, let second, let tasks) = try await setup.exporter.export(Self.day) else {
            Issue.record("expected the re-run to export")
            return
        }
        #expect(second == first)
        #expect(tasks == 0, "report tasks are named: a re-run enqueues none twice")
    }

    /// Receipts for the accounts whose tier has `signedUsageReceipts` only: each holds the
    /// account's records (the same lines as the day's objects, in ledger order), verifies
    /// with the day's key, and names the manifest it was drawn from; a re-run makes the
    /// same bytes.
    @Test func receipts_holdTheAccountsOwnRecords_signed_forTiersWithSignedUsageReceipts() async throws {
        let setup = try setup()
        try await seedLedger(setup.store, day: Self.day, count: 1_200, late: 5)
        // acct_2 is on the pro plan, stored with entitlements that omit the feature: the plan decides.
        for (id, tier, stored) in [("acct_0", Tier.pro, Tier.pro), ("acct_1", Tier.free, Tier.free), ("acct_2", Tier.pro, Tier.free)] {
            try await setup.store.set(
                try DocumentPath(collection: Account.collection, id: id),
                try FieldValueEncoder().encode(Account(id: id, tier: tier, entitlements: TierCatalog.standard.entitlements(for: stored))))
        }
        guard case .exported(let manifest, let digest, _) = try await setup.exporter.export(Self.day) else {
            Issue.record("expected an export")
            return
        }
        let layout = ExportLayout()
        #expect(try await setup.blobs.attributes(layout.receipt(Self.day, accountId: "acct_1")) == nil, "free: no receipt")
        #expect(try await setup.blobs.attributes(layout.receipt(Self.day, accountId: "acct_2")) != nil, "pro plan: a receipt")
        let receiptBytes = try await setup.blobs.read(layout.receipt(Self.day, accountId: "acct_0")).data
        let signature = try ExportSignature(
            document: try await setup.blobs.read(layout.receiptSignature(Self.day, accountId: "acct_0")).data)
        #expect(Self.signer.publicKey.isValid(signature, for: receiptBytes))
        let receipt = try JSONValue.parse(Data(receiptBytes))
        let total = try #require(manifest.accounts.first { $0.accountId == "acct_0" })
        #expect(receipt["records"] == .integer(total.records) && receipt["units"] == .integer(total.units))
        #expect(receipt["lateRecords"] == .integer(total.lateRecords))
        #expect(receipt["manifest"]?["sha256"] == .string(digest))

        // The records object: what the receipt says, and exactly acct_0's lines of the day's objects.
        let records = try await setup.blobs.read(layout.accountRecords(Self.day, accountId: "acct_0")).data
        #expect(receipt["object"]?["sha256"] == .string(Hex.encode(SHA256.hash(data: records))))
        var plain: [UInt8] = []
        try GzipDecompressor().decompress(records, into: &plain)
        var expected: [[UInt8]] = []
        for object in manifest.objects {
            var day: [UInt8] = []
            try GzipDecompressor().decompress(try await setup.blobs.read(object.name).data, into: &day)
            expected += day.split(separator: 0x0A).map(Array.init).filter {
                (try? JSONValue.parse(Data($0))["accountId"]) == .string("acct_0")
            }
        }
        #expect(Int64(expected.count) == total.records)
        #expect(Set(plain.split(separator: 0x0A).map(Array.init)) == Set(expected))
        #expect(
            try await setup.store.get(try DocumentPath(collection: ExportState.collection, id: Self.day.description))?.decode(
                ExportState.self
            ).receipts == 2)

        // A run that died after the receipts, before completion was recorded: the same bytes again.
        try await setup.store.commit([Write.delete(try DocumentPath(collection: ExportState.collection, id: Self.day.description))])
        guard case .exported = try await setup.exporter.export(Self.day) else {
            Issue.record("expected the re-run to export")
            return
        }
        #expect(try await setup.blobs.read(layout.receipt(Self.day, accountId: "acct_0")).data == receiptBytes)
        #expect(ExportLayout(prefix: "u").receipt(Self.day, accountId: "org/x y") == "u/2026/01/01/accounts/org%2Fx%20y.receipt.json")
    }

    @Test func export_refusesAnUnsettledDay_aGap_andAChainStartingAfterRecords() async throws {
        let setup = try setup()
        try await seedLedger(setup.store, day: Self.day, count: 10)
        try await seedLedger(setup.store, day: Self.day.next, count: 10)
        await expectCode(.failedPrecondition) { try await setup.exporter.export(Self.day.next) }
        let today = UTCDay(containing: setup.database.clock.now())
        await expectCode(.failedPrecondition) { try await setup.exporter.export(today) }
        #expect(try await setup.exporter.nextDay() == Self.day)
        _ = try await setup.exporter.export(Self.day)
        await expectCode(.failedPrecondition) { try await setup.exporter.export(Self.day.next.next) }
    }

    @Test func verifier_trustsRotatedKeysByID_andCallsAnUntrustedOneUnknown() async throws {
        let newSigner = try ExportSigner(base64: Data(Array("export-tests-key-rotated-0123456".utf8)).base64EncodedString())
        let first = try setup()
        try await seedLedger(first.store, day: Self.day, count: 10)
        try await seedLedger(first.store, day: Self.day.next, count: 10)
        _ = try await first.exporter.export(Self.day)
        let rotated = try setup(signer: newSigner, database: first.database)
        guard case .exported(let manifest, _, _) = try await rotated.exporter.export(Self.day.next) else {
            Issue.record("the day after the rotation was not exported")
            return
        }
        #expect(manifest.keyId == newSigner.keyId)
        #expect(manifest.keyId != Self.signer.keyId)
        let both = ExportVerifier(blobs: first.blobs, layout: ExportLayout(), trustedKeys: [Self.signer.publicKey, newSigner.publicKey])
        #expect(try await both.verify(from: Self.day, to: Self.day.next).map(\.verdict) == [.valid, .valid])
        let onlyNew = ExportVerifier(blobs: first.blobs, layout: ExportLayout(), trustedKeys: [newSigner.publicKey])
        #expect(try await onlyNew.verify(from: Self.day, to: Self.day.next).map(\.verdict) == [.unknownKey, .valid])
        let published = ExportVerifier(blobs: first.blobs, layout: ExportLayout())
        #expect(try await published.verify(from: Self.day, to: Self.day.next).map(\.verdict) == [.valid, .valid])
    }
}
