import AccountAPI
import Foundation
import Logging
import Testing
import TollgateExport
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator
@testable import UsageExport

/// `GET /v1/exports/{day}` over a real export: the links name the account's own receipt,
/// whose signature verifies with the key the answer links to, and every refusal the README
/// lists happens when it says.
@Suite struct AccountAPIExportTests {
    static let day = UTCDay("2025-12-30")!

    @Test func receiptLinks_verify_andEveryRefusalHappensWhenTheREADMESays() async throws {
        let api = try LocalAccountAPI()
        let (clock, ports) = (api.clock, api.ports)
        // user_a acts for acct_0 (pro), user_b for acct_1 (free when the day is exported).
        func account(_ id: String, _ tier: Tier) async throws {
            try await ports.store.set(
                try DocumentPath(collection: Account.collection, id: id),
                try FieldValueEncoder().encode(Account(id: id, tier: tier, entitlements: TierCatalog.standard.entitlements(for: tier))))
        }
        try await ports.store.set(try DocumentPath("users/user_a"), ["accountId": .string("acct_0")])
        try await ports.store.set(try DocumentPath("users/user_b"), ["accountId": .string("acct_1")])
        try await account("acct_0", .pro)
        try await account("acct_1", .free)
        try await seedLedger(ports.store, day: Self.day, count: 40, accounts: 2)
        let exporter = UsageExporter(
            configuration: .init(reportQueue: "usage-reports", reportURL: "http://usage-report.test/"), store: ports.store,
            blobs: ports.blobs, tasks: ports.tasks, signer: exportTestSigner, clock: clock)

        func get(_ day: String, as user: String) async throws -> (Int, JSONValue) {
            try await api.call("GET", "/v1/exports/\(day)", as: user)
        }
        func expectRefusal(_ day: String, as user: String, _ status: Int, _ code: String) async throws {
            let (answered, body) = try await get(day, as: user)
            #expect(answered == status && body["error"]?["code"] == .string(code), "\(day) as \(user): \(body)")
        }

        try await expectRefusal(Self.day.description, as: "user_a", 404, "EXPORT_NOT_READY")
        guard case .exported = try await exporter.export(Self.day) else { throw TollgateError(.internal, "no export") }
        try await expectRefusal(Self.day.description, as: "user_b", 403, "FEATURE_NOT_IN_TIER")
        try await expectRefusal("2025-02-30", as: "user_a", 400, "INVALID_DATE")

        // The keys to pin, without a session: the one that signed the day is the current one.
        let (listed, keys) = try await api.call("GET", "/v1/signing-keys", as: nil)
        #expect(listed == 200 && keys["current"] == .string(exportTestSigner.keyId), "\(keys)")
        #expect(keys["keys"] == .array([try JSONValue.parse(Data(exportTestSigner.publicKey.document))]))

        let (status, answer) = try await get(Self.day.description, as: "user_a")
        #expect(status == 200, "\(answer)")
        // The fake's links name the objects; read them from the bucket the links point into.
        func object(_ link: JSONValue?) async throws -> [UInt8] {
            let url = try #require(link?["url"]?.stringValue.flatMap(URL.init(string:)))
            #expect(url.host == SQLiteBlobStore.linkHost && url.query?.contains("X-Goog-Expires=900") == true)
            let name = try #require(url.path.removingPercentEncoding).dropFirst("/local/".count)
            return try await ports.blobs.read(String(name)).data
        }
        let receipt = try await object(answer["receipt"])
        let signature = try ExportSignature(document: try await object(answer["signature"]))
        let key = try ExportPublicKey(document: try await object(answer["publicKey"]))
        #expect(key.keyId == exportTestSigner.keyId && key.isValid(signature, for: receipt))
        let parsed = try JSONValue.parse(Data(receipt))
        #expect(parsed["accountId"] == .string("acct_0") && answer["records"] == parsed["records"] && answer["records"] == .integer(20))
        #expect(answer["recordsObject"]?["sha256"] == parsed["object"]?["sha256"])
        #expect(answer["expiresAt"] == .string(clock.now().adding(seconds: 900).rfc3339))

        // What the customer downloaded verifies with `tollgate verify-receipt`, and any change
        // to it does not.
        let records = try await object(answer["recordsObject"])
        let folder = scratchURL("receipt")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func verify(
            receipt: [UInt8], records: [UInt8], account: String = "acct_0", day: String = Self.day.description
        ) async throws -> (Int32, String) {
            let files = [
                "receipt.json": receipt, "receipt.json.sig": signature.document, "records.ndjson.gz": records, "key.json": key.document,
            ]
            for (file, bytes) in files { try Data(bytes).write(to: folder.appendingPathComponent(file)) }
            let options = [
                "--receipt", folder.appendingPathComponent("receipt.json").path, "--signature",
                folder.appendingPathComponent("receipt.json.sig").path, "--records",
                folder.appendingPathComponent("records.ndjson.gz").path,
                "--trusted-key", folder.appendingPathComponent("key.json").path, "--account", account, "--day", day,
            ]
            let (status, out, _) = try await runTollgate(["verify-receipt"] + options, environment: [:])
            // The independent verifier of docs/formats.md reaches the same verdict.
            if PythonPeer.available {
                let (theirs, said) = try await PythonPeer.runProgram(
                    "examples/verify-receipt/verify_receipt.py", arguments: ["receipt"] + options)
                #expect(
                    theirs == status && said.components(separatedBy: "  ").first == out.components(separatedBy: "  ").first,
                    "tollgate: \(out)python: \(said)")
            }
            return (status, out)
        }
        let valid = try await verify(receipt: receipt, records: records)
        #expect(valid.0 == 0 && valid.1.hasPrefix("valid  2025-12-30 acct_0: 20 records"), "\(valid.1)")
        var fewer = records
        fewer[fewer.count / 2] ^= 0x01
        let alteredRecords = try await verify(receipt: receipt, records: fewer)
        #expect(alteredRecords.0 == 1 && alteredRecords.1.hasPrefix("altered records"))
        let inflated = Array(
            String(decoding: receipt, as: UTF8.self).replacingOccurrences(of: "\"records\":20", with: "\"records\":2").utf8)
        #expect(inflated != receipt)
        let alteredReceipt = try await verify(receipt: inflated, records: records)
        #expect(alteredReceipt.0 == 1 && alteredReceipt.1.hasPrefix("altered receipt"))
        // Genuine files prove nothing to someone else, or for another day.
        let otherAccount = try await verify(receipt: receipt, records: records, account: "acct_1")
        #expect(otherAccount.0 == 1 && otherAccount.1.hasPrefix("another account"), "\(otherAccount.1)")
        let otherDay = try await verify(receipt: receipt, records: records, day: "2025-12-31")
        #expect(otherDay.0 == 1 && otherDay.1.hasPrefix("another day"), "\(otherDay.1)")

        // A receipt follows the tier at export time: upgrading afterwards makes none for that day.
        try await account("acct_1", .pro)
        try await expectRefusal(Self.day.description, as: "user_b", 404, "NO_RECEIPT")
        // Retention removed the day's records: the links would lead nowhere.
        let state = try DocumentPath(collection: ExportState.collection, id: Self.day.description)
        var expired = try #require(try await ports.store.get(state)?.decode(ExportState.self))
        expired.objectsExpired = clock.now()
        try await ports.store.set(state, try FieldValueEncoder().encode(expired))
        try await expectRefusal(Self.day.description, as: "user_a", 410, "EXPORT_EXPIRED")
    }
}
