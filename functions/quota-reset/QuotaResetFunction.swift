import Foundation
import TollgateModel
import TollgateRuntime

/// `quota-reset`: starts the next window of every account whose window has ended,
/// exactly once per window: each account rolls in its own transaction that first checks
/// the window is still the ended one, so a second, late or overlapping run skips what is
/// done and an interrupted run leaves the rest for the next.
public struct QuotaResetFunction: BuildableFunction {
    public typealias Event = SchedulerEvent

    public static let declaration = FunctionDeclaration(
        name: "quota-reset", trigger: .scheduler(job: "quota-reset", schedule: "*/10 * * * *", timeZone: "Etc/UTC"),
        reads: [RuntimeConfiguration.Settings.quotaPeriod, pageSizeSetting],
        service: .init(concurrency: 1, maxInstances: 1, timeoutSeconds: 300))

    public static let pageSizeSetting = Setting(
        "TOLLGATE_QUOTA_RESET_PAGE_SIZE", .integer(1...500), default: "200", summary: "quota windows quota-reset rolls per commit")

    let store: any DocumentStore
    let period: QuotaPeriod
    let catalog: TierCatalog
    let pageSize: Int
    /// Stop starting new pages after this long, well inside the request deadline; the
    /// next run continues where this one stopped.
    let budget: Duration

    public init(
        store: any DocumentStore, period: QuotaPeriod, catalog: TierCatalog = .standard, pageSize: Int = 200,
        budget: Duration = .seconds(240)
    ) {
        self.store = store
        self.period = period
        self.catalog = catalog
        self.pageSize = pageSize
        self.budget = budget
    }

    /// From `TOLLGATE_QUOTA_PERIOD` and `TOLLGATE_QUOTA_RESET_PAGE_SIZE`.
    public static func make(_ setup: FunctionSetup) throws -> Self {
        Self(
            store: setup.ports.store, period: try QuotaPeriod.fromEnvironment(setup.environment),
            pageSize: try setup.environment.integer(pageSizeSetting))
    }

    public func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        let now = context.clock.now()
        let started = ContinuousClock.now
        var rolled = 0
        var skipped = 0
        var complete = false
        // Windows that ended, oldest first; rolled ones leave the result, so each page
        // query picks up where the last left off and memory holds one page.
        let query = DocumentQuery(collection: QuotaWindow.collection).filter("end", .lessThanOrEqual, .timestamp(now)).order(by: "end")
            .limit(pageSize)
        var cursor: DocumentSnapshot?
        while ContinuousClock.now - started < budget {
            let page = try await store.query(cursor.map { query.start(after: $0) } ?? query)
            if page.isEmpty {
                complete = true
                break
            }
            for snapshot in page {
                if try await roll(snapshot.path, now: now) { rolled += 1 } else { skipped += 1 }
            }
            cursor = page.last
        }
        context.logger.info("quota windows rolled", metadata: ["rolled": "\(rolled)", "skipped": "\(skipped)", "complete": "\(complete)"])
        return .json(200, .object(["rolled": .integer(Int64(rolled)), "skipped": .integer(Int64(skipped)), "complete": .bool(complete)]))
    }

    /// Rolls one account's window if it is still ended. - Returns: whether it rolled.
    func roll(_ quotaPath: DocumentPath, now: Timestamp) async throws -> Bool {
        let accountPath = try DocumentPath(collection: Account.collection, id: quotaPath.id)
        let period = self.period
        let free = Account(id: quotaPath.id, tier: .free, entitlements: catalog.entitlements(for: .free))
        return try await store.runTransaction { transaction in
            guard let window = try await transaction.get(quotaPath)?.decode(QuotaWindow.self), window.hasEnded(at: now) else {
                return false
            }
            let account = try await transaction.get(accountPath)?.decode(Account.self) ?? free
            try transaction.set(
                quotaPath, try FieldValueEncoder().encode(QuotaWindow.current(window, account: account, period: period, now: now)))
            return true
        }
    }
}
