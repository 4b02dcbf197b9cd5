import Foundation
import TollgateExport
import TollgateModel
import TollgateRuntime

/// `usage-export`: each run exports every day that is over and not yet exported, oldest
/// first (so a missed run catches up), within a time budget; the next run continues.
/// A job body `{"day": "YYYY-MM-DD"}` exports that day only (a back-fill).
public struct UsageExportFunction: BuildableFunction {
    public typealias Event = SchedulerEvent

    public static let declaration = FunctionDeclaration(
        name: "usage-export", trigger: .scheduler(job: "usage-export", schedule: "30 0 * * *", timeZone: "Etc/UTC"),
        ports: [.tasks], blobs: .createAndRead, reads: UsageExporter.Configuration.settings + [ExportSigner.keySetting],
        settings: ["TOLLGATE_USAGE_REPORT_URL": "{url:usage-report}", "TOLLGATE_EXPORT_PREFIX": "usage/"],
        // Streams a day of the ledger: one run at a time, the longest deadline.
        service: .init(memory: "512Mi", concurrency: 1, maxInstances: 1, timeoutSeconds: 1_800))

    let exporter: UsageExporter
    let budget: Duration

    public init(exporter: UsageExporter, budget: Duration = .seconds(1_500)) {
        self.exporter = exporter
        self.budget = budget
    }

    /// From ``UsageExporter/Configuration/fromEnvironment(_:reportURL:)`` and the signing key.
    public static func make(_ setup: FunctionSetup) throws -> Self {
        let ports = setup.ports
        let exporter = UsageExporter(
            configuration: try UsageExporter.Configuration.fromEnvironment(setup.environment), store: ports.store, blobs: ports.blobs,
            tasks: ports.tasks, signer: try ExportSigner.fromEnvironment(setup.environment), clock: ports.clock)
        return Self(exporter: exporter)
    }

    public func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        let requested = try Self.requestedDay(event.body)
        // A back-fill of a day that is not over is a request to fix, not a failure of the
        // export: dead-lettered (replay it once the day is over), never a 500.
        if let requested, !exporter.isSettled(requested) {
            throw TollgateError(
                .invalidArgument,
                "\(requested) is not over yet; it can be exported from \(requested.end.adding(seconds: exporter.configuration.settleSeconds))"
            )
        }
        let started = ContinuousClock.now
        var exported: [JSONValue] = []
        var next = requested
        if next == nil { next = try await exporter.nextDay() }
        while let day = next {
            let outcome = try await exporter.export(day)
            switch outcome {
            case .exported(let manifest, let digest, let tasks):
                context.logger.info(
                    "exported usage",
                    metadata: [
                        "day": "\(day)", "records": "\(manifest.records)", "objects": "\(manifest.objects.count)",
                        "accounts": "\(manifest.accounts.count)", "reportTasks": "\(tasks)", "manifestSHA256": "\(digest)",
                    ])
                exported.append(
                    .object(["day": .string(day.description), "records": .integer(manifest.records), "sha256": .string(digest)]))
                context.count("export_records", by: manifest.records)
            case .alreadyComplete:
                context.logger.info("usage already exported", metadata: ["day": "\(day)"])
            }
            guard requested == nil, ContinuousClock.now - started < budget else { break }
            next = try await exporter.nextDay()
        }
        return .json(200, .object(["exported": .array(exported)]))
    }

    static func requestedDay(_ body: Data) throws -> UTCDay? {
        guard !body.isEmpty, let json = try? JSONValue.parse(body), let text = json["day"]?.stringValue else { return nil }
        guard let day = UTCDay(text) else { throw TollgateError(.invalidArgument, "day must be YYYY-MM-DD, not '\(text)'") }
        return day
    }
}

extension UsageExporter.Configuration {
    public static let reportURLSetting = Setting.required(
        "TOLLGATE_USAGE_REPORT_URL", summary: "the usage-report service's URL, which report tasks target")
    public static let partRecordsSetting = Setting(
        "TOLLGATE_EXPORT_PART_RECORDS", .integer(1...50_000_000), default: "100000", summary: "ledger records per export object")
    public static let pageSizeSetting = Setting(
        "TOLLGATE_EXPORT_PAGE_SIZE", .integer(1...10_000), default: "1000", summary: "ledger entries usage-export reads at a time")
    public static let settings = [reportURLSetting, ExportLayout.prefixSetting, partRecordsSetting, pageSizeSetting]

    /// From ``settings``; `reportURL`, when given, stands for `TOLLGATE_USAGE_REPORT_URL`.
    public static func fromEnvironment(_ environment: Environment, reportURL: String? = nil) throws -> UsageExporter.Configuration {
        UsageExporter.Configuration(
            layout: try ExportLayout(environment: environment), partRecords: try environment.integer(partRecordsSetting),
            pageSize: try environment.integer(pageSizeSetting), reportQueue: Queue.usageReports,
            reportURL: try reportURL ?? environment.required(reportURLSetting))
    }
}

extension ExportSigner {
    public static let keySetting = Setting.required(
        "TOLLGATE_EXPORT_SIGNING_KEY", secret: true,
        summary: "the Ed25519 private key (32 bytes, base64) that signs export manifests; `tollgate export signing-key` makes one")

    /// - Throws: ``ConfigurationError`` naming `TOLLGATE_EXPORT_SIGNING_KEY`.
    public static func fromEnvironment(_ environment: Environment) throws -> ExportSigner {
        do { return try ExportSigner(base64: try environment.required(keySetting)) } catch let error as TollgateError {
            throw ConfigurationError(keySetting.name, error.message)
        }
    }
}
