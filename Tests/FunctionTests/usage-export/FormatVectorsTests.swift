import Crypto
import Foundation
import Testing
import TollgateExport
import TollgateModel
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import UsageExport

/// The test vectors of docs/formats.md (`docs/formats/vectors`): two days exported from a
/// fixed ledger with a fixed key, altered copies, and the verdict a verifier must reach on
/// each. The exporter must reproduce every committed byte, so the specification and the
/// code cannot drift apart unnoticed (after a deliberate format change, write them again
/// with `TOLLGATE_WRITE_FORMAT_VECTORS=1`); `tollgate verify-receipt`'s verifier and the
/// independent Python verifier (examples/verify-receipt, written from the specification)
/// must each reach every expected verdict.
@Suite struct FormatVectorsTests {
    static let folder = packageRoot.appendingPathComponent("docs/formats/vectors")
    static let days = [UTCDay("2025-12-29")!, UTCDay("2025-12-30")!]
    /// A key made for the vectors and published with them: never a deployment's key.
    static let signer = try! ExportSigner(base64: Data("tollgate-format-vectors-key-0001".utf8).base64EncodedString())
    static let otherSigner = try! ExportSigner(base64: Data("tollgate-format-vectors-other-01".utf8).base64EncodedString())
    /// An account id that needs percent-encoding in object names.
    static let encodedAccount = "org_Zoë+1"

    /// One verification a verifier must reach a verdict on.
    struct Case: Sendable {
        var name: String
        var receipt: String
        var signature: String
        var records: String
        var account: String
        var day: String
        var verdict: String

        var json: JSONValue {
            .object([
                "name": .string(name), "receipt": .string(receipt), "signature": .string(signature), "records": .string(records),
                "account": .string(account), "day": .string(day), "verdict": .string(verdict),
            ])
        }
    }

    /// Every vector file, by its path under the vectors folder, as the exporter makes it now.
    static func made() async throws -> (files: [String: [UInt8]], cases: [Case]) {
        let database = try temporaryDatabase(clock: FixedClock(time: Timestamp(rfc3339: "2025-12-31T02:00:00Z")!))
        let (store, blobs) = (SQLiteDocumentStore(database), SQLiteBlobStore(database))
        for (id, tier) in [("acct_0", Tier.pro), ("acct_1", Tier.free), (encodedAccount, Tier.enterprise)] {
            try await store.set(
                try DocumentPath(collection: Account.collection, id: id),
                try FieldValueEncoder().encode(Account(id: id, tier: tier, entitlements: TierCatalog.standard.entitlements(for: tier))))
        }
        // Day one: 5 records; day two: 7, two of them events of day one that arrived late.
        var writes: [Write] = []
        for (index, (day, accountId, minutes, lateBy)) in [
            (days[0], "acct_0", 10, 0), (days[0], "acct_1", 20, 0), (days[0], encodedAccount, 30, 0), (days[0], "acct_0", 600, 0),
            (days[0], "acct_0", 1_430, 0), (days[1], "acct_0", 5, 0), (days[1], encodedAccount, 50, 0), (days[1], "acct_1", 70, 0),
            (days[1], "acct_0", 90, 0), (days[1], "acct_0", 100, 1_200), (days[1], encodedAccount, 110, 1_300),
            (days[1], "acct_0", 1_000, 0),
        ].enumerated() {
            let recorded = day.start.adding(seconds: Int64(minutes) * 60 + 7)
            let record = UsageRecord(
                requestId: "req_\(Hex.padded(index, width: 4))", accountId: accountId, keyId: index % 3 == 0 ? nil : "key_\(index % 3)",
                time: recorded.adding(seconds: -Int64(lateBy) * 60 - 1), endpoint: index % 2 == 0 ? "/v1/graphs" : "/v1/jobs",
                units: Int64(index * 3 % 11 + 1), nodes: Int64(index), nodeDimensionUnits: Int64(index * 2), recorded: recorded)
            writes.append(
                Write.set(
                    try DocumentPath(
                        collection: UsageRecord.collection, id: UsageRecord.ledgerID(accountId: accountId, requestId: record.requestId)),
                    try FieldValueEncoder().encode(record)))
        }
        try await store.commit(writes)
        let exporter = UsageExporter(
            configuration: .init(reportQueue: "usage-reports", reportURL: "http://usage-report.test/"), store: store, blobs: blobs,
            tasks: SQLiteTaskQueue(database), signer: signer, clock: database.clock)
        for day in days {
            guard case .exported = try await exporter.export(day) else { throw TollgateError(.internal, "\(day) was not exported") }
        }
        var files: [String: [UInt8]] = [:]
        for name in try await blobs.list(prefix: "usage/", pageSize: 1_000, pageToken: nil).names {
            files[name] = try await blobs.read(name).data
        }

        // Altered copies, each failing one check.
        let layout = ExportLayout()
        let (day, account) = (days[1], "acct_0")
        let receipt = layout.receipt(day, accountId: account)
        let records = layout.accountRecords(day, accountId: account)
        let genuine = try #require(files[receipt])
        let text = String(decoding: genuine, as: UTF8.self)
        let units = try #require(try JSONValue.parse(Data(genuine))["units"]?.integerValue)
        files["altered/receipt-units-raised.json"] = Array(
            text.replacingOccurrences(of: "\"units\":\(units),", with: "\"units\":\(units + 1),").utf8)
        var flipped = try #require(files[records])
        flipped[flipped.count / 2] ^= 0x01
        files["altered/records-one-bit-flipped.ndjson.gz"] = flipped
        files["altered/receipt-signed-by-another-key.json.sig"] = try otherSigner.sign(genuine).document
        let signatureOfDayOne = try #require(files[layout.receiptSignature(days[0], accountId: account)])
        files["altered/receipt-signature-of-day-one.json.sig"] = signatureOfDayOne

        func valid(_ name: String, account: String, day: UTCDay, asked: String? = nil, on: UTCDay? = nil, _ verdict: String) -> Case {
            Case(
                name: name, receipt: layout.receipt(day, accountId: account), signature: layout.receiptSignature(day, accountId: account),
                records: layout.accountRecords(day, accountId: account), account: asked ?? account, day: (on ?? day).description,
                verdict: verdict)
        }
        var cases = [
            valid("acct_0's receipt of day two", account: "acct_0", day: day, "valid"),
            valid("acct_0's receipt of day one", account: "acct_0", day: days[0], "valid"),
            valid("a receipt of an account whose id is percent-encoded", account: encodedAccount, day: day, "valid"),
            valid("acct_0's files presented as acct_1's", account: "acct_0", day: day, asked: "acct_1", "another account"),
            valid("day one's receipt presented for day two", account: "acct_0", day: days[0], on: day, "another day"),
        ]
        var altered = valid("the receipt's units raised by one", account: "acct_0", day: day, "altered receipt")
        altered.receipt = "altered/receipt-units-raised.json"
        cases.append(altered)
        altered = valid("one bit of the records flipped", account: "acct_0", day: day, "altered records")
        altered.records = "altered/records-one-bit-flipped.ndjson.gz"
        cases.append(altered)
        altered = valid("signed by a key that is not the trusted one", account: "acct_0", day: day, "unknown key")
        altered.signature = "altered/receipt-signed-by-another-key.json.sig"
        cases.append(altered)
        altered = valid("day two's receipt with day one's signature", account: "acct_0", day: day, "altered receipt")
        altered.signature = "altered/receipt-signature-of-day-one.json.sig"
        cases.append(altered)
        files["trusted-key.json"] = signer.publicKey.document
        let digests = JSONValue.object(files.mapValues { .string(Hex.encode(SHA256.hash(data: $0))) })
        let expected: JSONValue = .object([
            "trustedKey": .string("trusted-key.json"), "receipts": .array(cases.map(\.json)), "sha256": digests,
        ])
        files["expected.json"] = Array((expected.rendered(pretty: true) + "\n").utf8)
        return (files, cases)
    }

    @Test func theExporter_makesEveryCommittedByte() async throws {
        let (files, _) = try await Self.made()
        if ProcessInfo.processInfo.environment["TOLLGATE_WRITE_FORMAT_VECTORS"] == "1" {
            try? FileManager.default.removeItem(at: Self.folder)
            for (name, bytes) in files {
                let url = Self.folder.appendingPathComponent(name)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(bytes).write(to: url)
            }
        }
        let committed = try Self.committed()
        #expect(Set(committed.keys) == Set(files.keys), "the vectors folder holds other files than the exporter makes")
        for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
            #expect(committed[name] == bytes, "\(name) differs from what the exporter makes now: a format change needs a new version")
        }
    }

    @Test func tollgatesVerifier_reachesEveryExpectedVerdict() async throws {
        let files = try Self.committed()
        let key = try ExportPublicKey(document: try #require(files["trusted-key.json"]))
        for check in try Self.expectedCases() {
            let (verdict, detail) = ReceiptVerifier.verify(
                receipt: try #require(files[check.receipt]), signature: try #require(files[check.signature]),
                records: try #require(files[check.records]), trustedKey: key, account: check.account, day: try #require(UTCDay(check.day))
            ) { gzip in
                var plain: [UInt8] = []
                try GzipDecompressor().decompress(gzip, into: &plain)
                return plain
            }
            #expect(verdict.rawValue == check.verdict, "\(check.name): \(detail)")
        }
    }

    @Test(Peer.pythonVenv.trait)
    func theIndependentVerifier_reachesEveryExpectedVerdict() async throws {
        for check in try Self.expectedCases() {
            @Sendable func path(_ name: String) -> String { Self.folder.appendingPathComponent(name).path }
            let (status, output) = try await PythonPeer.runProgram(
                "examples/verify-receipt/verify_receipt.py",
                arguments: [
                    "receipt", "--receipt", path(check.receipt), "--signature", path(check.signature), "--records",
                    path(check.records), "--trusted-key", path("trusted-key.json"), "--account", check.account, "--day", check.day,
                ])
            #expect(output.hasPrefix(check.verdict + "  "), "\(check.name): \(output)")
            #expect(status == (check.verdict == "valid" ? 0 : 1), "\(check.name): exit \(status)")
        }
    }

    @Test(Peer.pythonVenv.trait)
    func theIndependentVerifier_auditsEachDay_itsObjectsChainAndReceipts() async throws {
        let folder = Self.folder.path
        for (index, day) in Self.days.enumerated() {
            let directory = "\(folder)/usage/\(day.pathComponent)"
            let previous = index == 0 ? [] : ["--previous-manifest", "\(folder)/usage/\(Self.days[index - 1].pathComponent)/manifest.json"]
            let (status, output) = try await PythonPeer.runProgram(
                "examples/verify-receipt/verify_receipt.py",
                arguments: ["day", "--directory", directory, "--trusted-key", "\(folder)/trusted-key.json"] + previous)
            #expect(status == 0 && output.hasPrefix("valid  \(day): "), "\(output)")
        }
    }

    /// A month of real exports (December 2025, late records every day): both verifiers pass
    /// every receipt, the Python audit passes every day, chained to the one before, and
    /// both refuse a receipt presented as another account's or another day's.
    @Test(Peer.pythonVenv.trait)
    func aMonthOfExports_bothVerifiersAgreeOnEveryDayAndReceipt() async throws {
        let database = try temporaryDatabase(clock: FixedClock(time: Timestamp(rfc3339: "2026-01-01T02:00:00Z")!))
        let (store, blobs) = (SQLiteDocumentStore(database), SQLiteBlobStore(database))
        for (id, tier) in [("acct_0", Tier.pro), ("acct_1", Tier.free), ("acct_2", Tier.enterprise)] {
            try await store.set(
                try DocumentPath(collection: Account.collection, id: id),
                try FieldValueEncoder().encode(Account(id: id, tier: tier, entitlements: TierCatalog.standard.entitlements(for: tier))))
        }
        let exporter = UsageExporter(
            configuration: .init(reportQueue: "usage-reports", reportURL: "http://usage-report.test/"), store: store, blobs: blobs,
            tasks: SQLiteTaskQueue(database), signer: Self.signer, clock: database.clock)
        let days = (0..<31).map { UTCDay(containing: Timestamp(rfc3339: "2025-12-01T00:00:00Z")!.adding(seconds: Int64($0) * 86_400)) }
        for day in days {
            try await seedLedger(store, day: day, count: 24, accounts: 3, late: 2)
            guard case .exported = try await exporter.export(day) else { throw TollgateError(.internal, "\(day) was not exported") }
        }
        let folder = scratchURL("month-of-exports")
        var token: String?
        repeat {
            let page = try await blobs.list(prefix: "", pageSize: 1_000, pageToken: token)
            for name in page.names {
                let url = folder.appendingPathComponent(name)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(try await blobs.read(name).data).write(to: url)
            }
            token = page.nextPageToken
        } while token != nil
        try Data(Self.signer.publicKey.document).write(to: folder.appendingPathComponent("key.json"))
        let layout = ExportLayout()
        var receipts = 0
        for (index, day) in days.enumerated() {
            for account in ["acct_0", "acct_2"] {
                func read(_ name: String) async throws -> [UInt8] { try await blobs.read(name).data }
                let files = (
                    try await read(layout.receipt(day, accountId: account)),
                    try await read(layout.receiptSignature(day, accountId: account)),
                    try await read(layout.accountRecords(day, accountId: account))
                )
                for (asked, on, verdict) in [
                    (account, day, "valid"), ("acct_1", day, "another account"), (account, day.next, "another day"),
                ] {
                    let (ours, detail) = ReceiptVerifier.verify(
                        receipt: files.0, signature: files.1, records: files.2, trustedKey: Self.signer.publicKey, account: asked, day: on
                    ) { gzip in
                        var plain: [UInt8] = []
                        try GzipDecompressor().decompress(gzip, into: &plain)
                        return plain
                    }
                    #expect(ours.rawValue == verdict, "\(day) \(account) as \(asked) on \(on): \(detail)")
                }
                receipts += 1
            }
            let directory = folder.appendingPathComponent(layout.directory(day)).path
            let previous = index == 0 ? [] : ["--previous-manifest", folder.appendingPathComponent(layout.manifest(days[index - 1])).path]
            let arguments = ["day", "--directory", directory, "--trusted-key", folder.appendingPathComponent("key.json").path] + previous
            let (status, output) = try await PythonPeer.runProgram("examples/verify-receipt/verify_receipt.py", arguments: arguments)
            #expect(status == 0 && output.hasPrefix("valid  \(day): ") && output.contains(", 2 receipts,"), "\(output)")
        }
        #expect(receipts == 62)
    }

    static func committed() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        let root = folder.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { return files }
        for case let name as String in walker {
            var isDirectory: ObjCBool = false
            let full = root + "/" + name
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files[name] = Array(try Data(contentsOf: URL(fileURLWithPath: full)))
        }
        return files
    }

    static func expectedCases() throws -> [Case] {
        let expected = try JSONValue.parse(Data(contentsOf: folder.appendingPathComponent("expected.json")))
        return (expected["receipts"]?.arrayValue ?? []).compactMap { item in
            guard let name = item["name"]?.stringValue, let receipt = item["receipt"]?.stringValue,
                let signature = item["signature"]?.stringValue, let records = item["records"]?.stringValue,
                let account = item["account"]?.stringValue, let day = item["day"]?.stringValue, let verdict = item["verdict"]?.stringValue
            else { return nil }
            return Case(name: name, receipt: receipt, signature: signature, records: records, account: account, day: day, verdict: verdict)
        }
    }
}
