import Foundation
import TollgateExport
import TollgateModel
import TollgateRuntime

/// `cleanup`: deletes what retention says may go, in pages, each page its own commit, so
/// a run stopped anywhere leaves a consistent state and the next run continues. The
/// ledger of a day goes only once that day is exported and its objects verified against
/// the signed manifest; a day never exported is never touched.
public struct CleanupFunction: BuildableFunction {
    public typealias Event = SchedulerEvent

    public static let declaration = FunctionDeclaration(
        name: "cleanup", trigger: .scheduler(job: "cleanup", schedule: "15 3 * * *", timeZone: "Etc/UTC"), blobs: .manage,
        reads: Retention.settings + [ExportLayout.prefixSetting, pageSizeSetting], settings: ["TOLLGATE_EXPORT_PREFIX": "usage/"],
        service: .init(concurrency: 1, maxInstances: 1, timeoutSeconds: 900))

    public static let pageSizeSetting = Setting(
        "TOLLGATE_CLEANUP_PAGE_SIZE", .integer(1...FirestoreLimits.maxWritesPerCommit), default: "500",
        summary: "deletes cleanup commits at a time")

    let store: any DocumentStore
    let blobs: any BlobStore
    let layout: ExportLayout
    let retention: Retention
    let pageSize: Int

    public init(store: any DocumentStore, blobs: any BlobStore, layout: ExportLayout, retention: Retention, pageSize: Int = 500) {
        self.store = store
        self.blobs = blobs
        self.layout = layout
        self.retention = retention
        self.pageSize = min(pageSize, FirestoreLimits.maxWritesPerCommit)
    }

    /// From the retention settings (``Retention/fromEnvironment(_:)``), `TOLLGATE_EXPORT_PREFIX`
    /// and `TOLLGATE_CLEANUP_PAGE_SIZE` (deletes a commit, default 500).
    public static func make(_ setup: FunctionSetup) throws -> Self {
        let environment = setup.environment
        return Self(
            store: setup.ports.store, blobs: setup.ports.blobs,
            layout: try ExportLayout(environment: environment), retention: try Retention.fromEnvironment(environment),
            pageSize: try environment.integer(pageSizeSetting))
    }

    /// Counts by category, in a stable order.
    public struct Counts: Sendable {
        public var byCategory: [(String, Int)] = []
        mutating func add(_ category: String, _ count: Int) { byCategory.append((category, count)) }
        public var json: JSONValue { .object(Dictionary(uniqueKeysWithValues: byCategory.map { ($0.0, .integer(Int64($0.1))) })) }
    }

    public func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        let counts = try await run(now: context.clock.now(), dryRun: false)
        context.logger.info("cleanup done", metadata: .init(uniqueKeysWithValues: counts.byCategory.map { ($0.0, "\($0.1)") }))
        return .json(200, counts.json)
    }

    /// Deletes (or with `dryRun`, counts) everything past its retention.
    public func run(now: Timestamp, dryRun: Bool) async throws -> Counts {
        var counts = Counts()
        func ago(_ days: Int) -> Timestamp { Timestamp(microsecondsSinceEpoch: now.microsecondsSinceEpoch - Int64(days) * 86_400_000_000) }
        let base = DocumentQuery(collection: "sessions")
        counts.add("sessions", try await purge(base.filter("expires", .lessThan, .timestamp(now)), dryRun: dryRun))
        let keys = DocumentQuery(collection: APIKeyRecord.collection)
        counts.add("expiredKeys", try await purge(keys.filter("expires", .lessThan, .timestamp(ago(retention.keyDays))), dryRun: dryRun))
        counts.add("revokedKeys", try await purge(keys.filter("revoked", .lessThan, .timestamp(ago(retention.keyDays))), dryRun: dryRun))
        let markers = DocumentQuery(collection: StripeEventMarker.collection).filter(
            "created", .lessThan, .integer(ago(retention.stripeEventDays).secondsSinceEpoch))
        counts.add("stripeEvents", try await purge(markers, dryRun: dryRun))
        let clerkMarkers = DocumentQuery(collection: ClerkEventMarker.collection).filter(
            "timestamp", .lessThan, .integer(ago(retention.clerkEventDays).microsecondsSinceEpoch / 1_000))
        counts.add("clerkEvents", try await purge(clerkMarkers, dryRun: dryRun))
        let letters = DocumentQuery(collection: DeadLetter.collection).filter(
            "received", .lessThan, .timestamp(ago(retention.deadLetterDays)))
        counts.add("deadLetters", try await purge(letters, dryRun: dryRun))
        let (ledger, unverified) = try await purgeLedger(before: ago(retention.ledgerDays), now: now, dryRun: dryRun)
        counts.add("ledgerEntries", ledger)
        counts.add("ledgerDaysUnverified", unverified)
        counts.add("exportObjects", try await purgeExportObjects(before: ago(retention.exportDays), now: now, dryRun: dryRun))
        return counts
    }

    /// Deletes every document the query matches, a page per commit.
    func purge(_ query: DocumentQuery, dryRun: Bool) async throws -> Int {
        var deleted = 0
        var cursor: DocumentSnapshot?
        while true {
            let paged = query.limit(pageSize)
            let page = try await store.query(dryRun ? (cursor.map { paged.start(after: $0) } ?? paged) : paged)
            if page.isEmpty { break }
            deleted += page.count
            if dryRun {
                cursor = page.last
            } else {
                try await store.commit(page.map { Write.delete($0.path) })
            }
            if page.count < pageSize { break }
        }
        return deleted
    }

    /// Ledger days (by `recorded`) that ended before `cutoff`, exported, and verified.
    /// - Returns: entries deleted, and days kept because their objects did not verify.
    func purgeLedger(before cutoff: Timestamp, now: Timestamp, dryRun: Bool) async throws -> (Int, Int) {
        var deleted = 0
        var unverified = 0
        let verifier = ExportVerifier(blobs: blobs, layout: layout)
        for snapshot in try await store.query(DocumentQuery(collection: ExportState.collection)) {
            guard let day = UTCDay(snapshot.path.id), day.end <= cutoff else { continue }
            var state = try snapshot.decode(ExportState.self)
            guard state.ledgerDeleted == nil else { continue }
            if state.verified == nil {
                guard try await verifier.verify(day).verdict == .valid else {
                    unverified += 1
                    continue
                }
                state.verified = now
            }
            let query = UsageRecord.recorded(during: day)
            deleted += try await purge(query, dryRun: dryRun)
            if !dryRun {
                state.ledgerDeleted = now
                try await store.commit([Write.set(snapshot.path, try FieldValueEncoder().encode(state))])
            }
        }
        return (deleted, unverified)
    }

    /// The data objects of days exported before `cutoff`; manifests and signatures stay.
    func purgeExportObjects(before cutoff: Timestamp, now: Timestamp, dryRun: Bool) async throws -> Int {
        var deleted = 0
        for snapshot in try await store.query(DocumentQuery(collection: ExportState.collection)) {
            guard let day = UTCDay(snapshot.path.id), day.end <= cutoff else { continue }
            var state = try snapshot.decode(ExportState.self)
            guard state.objectsExpired == nil else { continue }
            var token: String?
            repeat {
                let page = try await blobs.list(prefix: layout.directory(day), pageSize: 1_000, pageToken: token)
                for name in page.names where name.hasSuffix(".ndjson.gz") {
                    deleted += 1
                    if !dryRun {
                        do { try await blobs.delete(name, ifGenerationMatch: nil) } catch let error as TollgateError
                            where error.code == .notFound
                        {}
                    }
                }
                token = page.nextPageToken
            } while token != nil
            if !dryRun {
                state.objectsExpired = now
                try await store.commit([Write.set(snapshot.path, try FieldValueEncoder().encode(state))])
            }
        }
        return deleted
    }
}
