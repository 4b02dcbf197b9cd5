import ArgumentParser
import Cleanup
import Foundation
import TollgateDrivers
import TollgateEmulator
import TollgateExport
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting
import UsageExport

/// What the export commands share: the ports, and settings that fall back to the
/// emulator's local values only when the state is local.
struct ExportContext {
    let environment = Environment()
    let ports: Ports
    var isLocal: Bool { (try? environment.required(Ports.Settings.store))?.hasPrefix("sqlite:") ?? true }
    var layout: ExportLayout { (try? ExportLayout(environment: environment)) ?? ExportLayout() }

    static func open() async throws -> ExportContext {
        do { return ExportContext(ports: try await Ports.open(environment: Environment())) } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    func localFallback(_ setting: Setting, _ local: String) throws -> String {
        if let value = try? environment.text(setting) { return value }
        guard isLocal else { throw ValidationError("\(setting.name) is not set") }
        FileHandle.standardError.write(Data("note: \(setting.name) is unset; using the emulator's local value\n".utf8))
        return local
    }

    /// `TOLLGATE_EXPORT_SIGNING_KEY`, or on a local state (`TOLLGATE_STORE` unset or
    /// `sqlite:`) the key `tollgate serve` made for that state, else the replays' key.
    static func signer(environment: Environment) throws -> ExportSigner {
        let text: String
        var source = "TOLLGATE_EXPORT_SIGNING_KEY"
        if let given = try? environment.text(ExportSigner.keySetting) {
            text = given
        } else {
            guard let path = try? SQLiteDatabase.path(fromURL: try environment.required(Ports.Settings.store)) else {
                throw ValidationError("TOLLGATE_EXPORT_SIGNING_KEY is not set")
            }
            FileHandle.standardError.write(Data("note: TOLLGATE_EXPORT_SIGNING_KEY is unset; using the local state's key\n".utf8))
            text = LocalEnvironment.exportSigningKey(forState: path)
            source = "the local state's key (\(path).export-signing-key)"
        }
        do { return try ExportSigner(base64: text) } catch let error as TollgateError {
            throw ValidationError("\(source): \(error.message)")
        }
    }

    func exporter() throws -> UsageExporter {
        let signer = try Self.signer(environment: environment)
        let reportURL = try localFallback(UsageExporter.Configuration.reportURLSetting, LocalEnvironment.url(of: "usage-report"))
        let configuration: UsageExporter.Configuration
        do { configuration = try .fromEnvironment(environment, reportURL: reportURL) } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        return UsageExporter(
            configuration: configuration, store: ports.store, blobs: ports.blobs, tasks: ports.tasks, signer: signer, clock: ports.clock)
    }
}

func parseDay(_ text: String, _ option: String) throws -> UTCDay {
    guard let day = UTCDay(text) else { throw ValidationError("\(option) takes a day as YYYY-MM-DD, not '\(text)'") }
    return day
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export ledger days to the blob store, as the usage-export function does (the same code).",
        subcommands: [Run.self, SigningKey.self, PublicKey.self], defaultSubcommand: Run.self)

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Export one day (--date), or every day that is over and not yet exported.")

        @Option(help: "The day to export, YYYY-MM-DD (a back-fill).") var date: String?

        func run() async throws {
            let context = try await ExportContext.open()
            let exporter = try context.exporter()
            var next = try date.map { try parseDay($0, "--date") }
            let single = next != nil
            if next == nil { next = try await exporter.nextDay() }
            if next == nil { print("nothing to export") }
            while let day = next {
                switch try await exporter.export(day) {
                case .exported(let manifest, let digest, let tasks):
                    print(
                        "\(day)  exported  \(manifest.records) records, \(manifest.objects.count) objects, \(tasks) report tasks  sha256 \(digest)"
                    )
                case .alreadyComplete(let state):
                    print("\(day)  already exported  \(state.records) records  sha256 \(state.manifestSHA256)")
                }
                next = single ? nil : try await exporter.nextDay()
            }
        }
    }

    struct SigningKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "signing-key",
            abstract: "Make a new Ed25519 export signing key: the private key (base64) on stdout for Secret Manager, its id on stderr.")

        func run() async throws {
            let key = ExportSigner.generate()
            FileHandle.standardError.write(Data("key id \(try ExportSigner(base64: key).keyId)\n".utf8))
            print(key)
        }
    }

    struct PublicKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "public-key",
            abstract:
                "Print the public key document of TOLLGATE_EXPORT_SIGNING_KEY (the keys/{id}.json usage-export publishes): what customers and auditors pin."
        )

        func run() async throws {
            let signer = try ExportContext.signer(environment: Environment())
            FileHandle.standardOutput.write(Data(signer.publicKey.document))
        }
    }
}

struct VerifyExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-export",
        abstract: "Walk the chain of export manifests and check each day's signature, objects and link; exit 1 on any failure.")

    @Option(help: "First day, YYYY-MM-DD.") var from: String
    @Option(help: "Last day, YYYY-MM-DD (default: --from).") var to: String?
    @Option(
        name: .customLong("trusted-key"),
        help: "A public key document (keys/{id}.json) to trust; repeatable. Without one, the keys published in the bucket are used.")
    var trustedKeys: [String] = []

    func run() async throws {
        let first = try parseDay(from, "--from")
        let last = try to.map { try parseDay($0, "--to") } ?? first
        guard first <= last else { throw ValidationError("--from must not be after --to") }
        let context = try await ExportContext.open()
        let keys = try trustedKeys.map { path -> ExportPublicKey in
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            return try ExportPublicKey(document: Array(data))
        }
        if keys.isEmpty {
            FileHandle.standardError.write(
                Data("note: trusting the keys published beside the exports; pass --trusted-key to pin them\n".utf8))
        }
        var expired: Set<UTCDay> = []
        for snapshot in try await context.ports.store.query(DocumentQuery(collection: ExportState.collection))
        where snapshot.fields["objectsExpired"] != nil {
            if let day = UTCDay(snapshot.path.id) { expired.insert(day) }
        }
        let verifier = ExportVerifier(
            blobs: context.ports.blobs, layout: context.layout, trustedKeys: keys.isEmpty ? nil : keys, expiredDays: expired)
        var failures = 0
        for report in try await verifier.verify(from: first, to: last) {
            if report.verdict.isFailure { failures += 1 }
            print("\(report.day)  \(report.verdict.rawValue)  \(report.detail)")
        }
        if failures > 0 {
            print("\(failures) of \(last.daysSinceEpoch - first.daysSinceEpoch + 1) days failed")
            throw ExitCode.failure
        }
    }
}

struct VerifyReceipt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-receipt",
        abstract:
            "Check a signed usage receipt from its downloaded files, as its customer can: signed by the key, of --account for --day, and the records it states; exit 1 unless valid.",
        discussion:
            "The files are what account-api's GET /v1/exports/{day} links to. Pin the key: get it from the operator (tollgate export public-key), not the bucket. docs/formats.md specifies every check."
    )

    @Option(help: "The receipt (accounts/{id}.receipt.json).") var receipt: String
    @Option(help: "Its signature (.receipt.json.sig).") var signature: String
    @Option(help: "The account's records (accounts/{id}.ndjson.gz).") var records: String
    @Option(name: .customLong("trusted-key"), help: "The public key document (keys/{id}.json) to trust.") var trustedKey: String
    @Option(help: "The account the receipt must be of: yours.") var account: String
    @Option(help: "The day it must be for, YYYY-MM-DD.") var day: String

    func run() async throws {
        func read(_ path: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            return Array(data)
        }
        let day = try parseDay(day, "--day")
        let key = try ExportPublicKey(document: try read(trustedKey))
        let (verdict, detail) = ReceiptVerifier.verify(
            receipt: try read(receipt), signature: try read(signature), records: try read(records), trustedKey: key, account: account,
            day: day
        ) { gzip in
            var plain: [UInt8] = []
            try GzipDecompressor().decompress(gzip, into: &plain)
            return plain
        }
        print("\(verdict.rawValue)  \(detail)")
        if verdict != .valid { throw ExitCode.failure }
    }
}

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a day's ledger with its export manifest and with what Stripe accepted; list differences, exit 1 if any.")

    @Option(help: "The day, YYYY-MM-DD.") var date: String

    func run() async throws {
        let day = try parseDay(date, "--date")
        let context = try await ExportContext.open()
        let store = context.ports.store
        // The ledger as it is now, partitioned exactly as exports are (by `recorded`).
        var ledger: [String: Int64] = [:]
        let query = UsageRecord.recorded(during: day).limit(1_000)
        var cursor: DocumentSnapshot?
        while true {
            let page = try await store.query(cursor.map { query.start(after: $0) } ?? query)
            for snapshot in page {
                guard case .string(let account) = snapshot.fields["accountId"] else { continue }
                if case .integer(let units) = snapshot.fields["units"] { ledger[account, default: 0] += units }
            }
            guard page.count == 1_000 else { break }
            cursor = page.last
        }
        var exported: [String: Int64] = [:]
        if let state = try await store.get(try DocumentPath(collection: ExportState.collection, id: day.description))?.decode(
            ExportState.self)
        {
            let manifest = try ExportManifest(parsing: try await context.ports.blobs.read(state.manifest).data)
            for total in manifest.accounts { exported[total.accountId] = total.units }
        } else {
            print("\(day) is not exported")
        }
        var differences = 0
        print("account  ledger  exported  reported  status")
        for account in Set(ledger.keys).union(exported.keys).sorted() {
            let report = try await store.get(
                try DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: day, accountId: account)))?.decode(
                    UsageReport.self)
            let (inLedger, inExport) = (ledger[account] ?? 0, exported[account])
            let status: String
            switch (inExport, report) {
            case (nil, _): status = "not exported"
            case (let units?, _) where units != inLedger: status = "ledger changed since export"
            case (let units?, nil) where units > 0: status = "not reported"
            case (let units?, let report?) where report.value != units: status = "reported \(report.value), exported \(units)"
            case (_, let report?) where report.status == "no-customer": status = "no Stripe customer"
            default: status = "ok"
            }
            if status != "ok" && status != "no Stripe customer" { differences += 1 }
            let reported = report.map { $0.status == "reported" ? String($0.value) : "-" } ?? "-"
            print("\(account)  \(inLedger)  \(inExport.map(String.init) ?? "-")  \(reported)  \(status)")
        }
        if differences > 0 {
            print("\(differences) difference\(differences == 1 ? "" : "s")")
            throw ExitCode.failure
        }
    }
}

struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup", abstract: "Apply retention (TOLLGATE_RETENTION_*) as the cleanup function does; --dry-run only counts.")

    @Flag(help: "Count what would be deleted; delete nothing.") var dryRun = false

    func run() async throws {
        let context = try await ExportContext.open()
        let retention: Retention
        do { retention = try Retention.fromEnvironment(context.environment) } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        let cleanup = CleanupFunction(store: context.ports.store, blobs: context.ports.blobs, layout: context.layout, retention: retention)
        let counts = try await cleanup.run(now: context.ports.clock.now(), dryRun: dryRun)
        for (category, count) in counts.byCategory {
            let verb = category == "ledgerDaysUnverified" ? "kept: objects do not verify" : (dryRun ? "would be deleted" : "deleted")
            print("\(category)  \(count)  \(verb)")
        }
    }
}
