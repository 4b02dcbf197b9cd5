import Crypto
import Foundation
import TollgateExport
import TollgateModel

/// Exports one day of the ledger: every record the ledger took in during the day (by
/// `recorded`), streamed page by page into gzip NDJSON objects, then a signed manifest
/// chained to the previous day's, then one `usage-report` task per account with usage.
///
/// Exactly once: everything written is a pure function of the ledger records of a day
/// that is over (and settled), the previous manifest and the key, and every object is
/// written create-only. A run stopped anywhere and run again produces the same bytes,
/// skips what exists after checking it, and finishes; a day already complete is left
/// alone.
public struct UsageExporter: Sendable {
    public struct Configuration: Sendable {
        public var layout: ExportLayout
        /// Records per object before the next part starts.
        public var partRecords: Int
        public var pageSize: Int
        /// Upload chunk size (a multiple of 256 KiB, as GCS requires).
        public var chunkBytes: Int
        public var compressionLevel: Int32
        /// How long after a day ends its export may start: longer than a ledger write's
        /// longest transaction (Firestore's 270 s), so no record of the day is in flight.
        public var settleSeconds: Int64
        /// Where `usage-report` tasks go.
        public var reportQueue: String
        public var reportURL: String

        public init(
            layout: ExportLayout = ExportLayout(), partRecords: Int = 100_000, pageSize: Int = 1_000, chunkBytes: Int = 4 << 20,
            compressionLevel: Int32 = 6, settleSeconds: Int64 = 300, reportQueue: String, reportURL: String
        ) {
            self.layout = layout
            self.partRecords = partRecords
            self.pageSize = pageSize
            self.chunkBytes = chunkBytes
            self.compressionLevel = compressionLevel
            self.settleSeconds = settleSeconds
            self.reportQueue = reportQueue
            self.reportURL = reportURL
        }
    }

    public enum Outcome: Sendable {
        case exported(ExportManifest, sha256: String, tasks: Int)
        case alreadyComplete(ExportState)
    }

    let configuration: Configuration
    let store: any DocumentStore
    let blobs: any BlobStore
    let tasks: any TaskQueue
    let signer: ExportSigner
    let clock: any TollgateModel.Clock

    public init(
        configuration: Configuration, store: any DocumentStore, blobs: any BlobStore, tasks: any TaskQueue, signer: ExportSigner,
        clock: any TollgateModel.Clock
    ) {
        self.configuration = configuration
        self.store = store
        self.blobs = blobs
        self.tasks = tasks
        self.signer = signer
        self.clock = clock
    }

    // MARK: - Which day

    /// The next day to export: the day after the last complete export, or the day of the
    /// ledger's first record; nil when that day is not over and settled yet, or there is
    /// no ledger at all.
    public func nextDay() async throws -> UTCDay? {
        let candidate: UTCDay
        if let last = try await lastExported() {
            candidate = last.next
        } else if let first = try await firstRecorded(before: nil) {
            candidate = UTCDay(containing: first)
        } else {
            return nil
        }
        return isSettled(candidate) ? candidate : nil
    }

    func isSettled(_ day: UTCDay) -> Bool {
        day.end.microsecondsSinceEpoch + configuration.settleSeconds * 1_000_000 <= clock.now().microsecondsSinceEpoch
    }

    func lastExported() async throws -> UTCDay? {
        // An export document exists only once its day is complete.
        let latest = try await store.query(DocumentQuery(collection: ExportState.collection).order(by: "day", descending: true).limit(1))
        return latest.first.flatMap { UTCDay($0.path.id) }
    }

    func firstRecorded(before end: Timestamp?) async throws -> Timestamp? {
        var query = DocumentQuery(collection: UsageRecord.collection).filter(
            "recorded", .greaterThanOrEqual, .timestamp(Timestamp(microsecondsSinceEpoch: 0)))
        if let end { query = query.filter("recorded", .lessThan, .timestamp(end)) }
        let first = try await store.query(query.order(by: "recorded").limit(1))
        if case .timestamp(let time) = first.first?.fields["recorded"] { return time }
        return nil
    }

    // MARK: - One day

    /// - Throws: `FAILED_PRECONDITION` when the day is not over, the previous day is not
    ///   exported, the chain would start after ledger records, or stored objects differ
    ///   from what the ledger produces (tampering, or a changed ledger: a person must look).
    public func export(_ day: UTCDay) async throws -> Outcome {
        let statePath = try DocumentPath(collection: ExportState.collection, id: day.description)
        if let done = try await store.get(statePath) { return .alreadyComplete(try done.decode(ExportState.self)) }
        guard isSettled(day) else {
            throw TollgateError(
                .failedPrecondition,
                "\(day) cannot be exported before \(Timestamp(secondsSinceEpoch: day.end.secondsSinceEpoch + configuration.settleSeconds))")
        }
        let previous = try await link(before: day)

        var writers: [String: PartWriter] = [:]
        var parts: [String: Int] = ["usage": 0, "late": 0]
        var objects: [ExportManifest.Object] = []
        var totals: [String: ExportManifest.AccountTotal] = [:]
        func close(_ kind: String) async throws {
            guard let writer = writers.removeValue(forKey: kind) else { return }
            objects.append(try await writer.finish())
            parts[kind, default: 0] += 1
        }

        let query = UsageRecord.recorded(during: day).limit(configuration.pageSize)
        // The next page is read while this one is written: two pages in memory, both cores busy.
        let store = self.store
        var pending: Task<[DocumentSnapshot], any Error>? = Task { try await store.query(query) }
        while let reading = pending {
            let page = try await reading.value
            pending = nil
            if page.count == configuration.pageSize, let last = page.last {
                pending = Task { try await store.query(query.start(after: last)) }
            }
            for snapshot in page {
                let line = try ExportRecord.line(snapshot)
                let kind = line.time < day.start ? "late" : "usage"
                if let writer = writers[kind], writer.records >= configuration.partRecords { try await close(kind) }
                if writers[kind] == nil {
                    let writer = try PartWriter(
                        name: configuration.layout.part(day, kind: kind, index: parts[kind, default: 0]), kind: kind, blobs: blobs,
                        chunkBytes: configuration.chunkBytes, level: configuration.compressionLevel)
                    try await writer.start()
                    writers[kind] = writer
                }
                try await writers[kind]!.append(line: line.bytes, units: line.units, time: line.time)
                var total = totals[line.accountId] ?? ExportManifest.AccountTotal(accountId: line.accountId)
                total.records += 1
                total.units = try total.units.checkedAdding(line.units, "the units of \(line.accountId) on \(day)")
                if kind == "late" {
                    total.lateRecords += 1
                    total.lateUnits = try total.lateUnits.checkedAdding(line.units, "the late units of \(line.accountId) on \(day)")
                }
                totals[line.accountId] = total
            }
        }
        try await close("usage")
        try await close("late")
        objects.sort { ($0.kind == "late" ? 1 : 0, $0.name) < ($1.kind == "late" ? 1 : 0, $1.name) }

        let manifest = ExportManifest(
            day: day, recordedFrom: day.start, recordedUntil: day.end, previous: previous, objects: objects,
            accounts: totals.values.sorted { $0.accountId < $1.accountId }, keyId: signer.keyId)
        let bytes = manifest.canonicalBytes
        let digest = Hex.encode(SHA256.hash(data: bytes))
        let layout = configuration.layout
        try await writeOnce(layout.publicKey(signer.keyId), signer.publicKey.document, contentType: "application/json")
        try await writeOnce(layout.manifest(day), bytes, contentType: "application/json")
        try await writeSignature(configuration.layout.signature(day), for: bytes)

        // Receipts before reports: a run that stops between them makes the missing ones again.
        let link = ExportManifest.Link(day: day, sha256: digest)
        var receipts: Int64 = 0
        let receiptAccounts = try await accountsWithReceipts(manifest.accounts.map(\.accountId))
        for total in manifest.accounts where receiptAccounts.contains(total.accountId) {
            try await writeReceipt(day, total: total, manifest: link)
            receipts += 1
        }

        // The manifest is committed: bill from it. Task names make a re-run enqueue nothing new.
        var enqueued = 0
        for total in manifest.accounts where total.units > 0 {
            if try await enqueueReport(day, total) { enqueued += 1 }
        }
        var state = ExportState(
            day: day, manifest: layout.manifest(day), manifestSHA256: digest, objects: Int64(objects.count), records: manifest.records,
            accounts: Int64(manifest.accounts.count), keyId: signer.keyId, completed: clock.now())
        state.receipts = receipts
        try await store.commit([Write.set(statePath, try FieldValueEncoder().encode(state))])
        return .exported(manifest, sha256: digest, tasks: enqueued)
    }

    /// The link to the previous day's manifest, checked against its export record.
    func link(before day: UTCDay) async throws -> ExportManifest.Link? {
        let previousPath = try DocumentPath(collection: ExportState.collection, id: day.previous.description)
        if let snapshot = try await store.get(previousPath) {
            let state = try snapshot.decode(ExportState.self)
            guard let stored = try await BlobDigest.sha256(of: state.manifest, in: blobs) else {
                throw TollgateError(.failedPrecondition, "the manifest of \(day.previous) is missing from the bucket")
            }
            guard stored == state.manifestSHA256 else {
                throw TollgateError(.failedPrecondition, "the manifest of \(day.previous) no longer matches its recorded SHA-256")
            }
            return ExportManifest.Link(day: day.previous, sha256: stored)
        }
        if let last = try await lastExported() {
            throw TollgateError(
                .failedPrecondition,
                last > day
                    ? "\(day) is before the chain's first day: it cannot grow backwards"
                    : "export \(last.next) first: the chain has no gaps")
        }
        // The first day of the chain: nothing may have been recorded before it.
        if let earlier = try await firstRecorded(before: day.start) {
            throw TollgateError(.failedPrecondition, "the ledger has records from \(UTCDay(containing: earlier)): the chain starts there")
        }
        return nil
    }

    /// Writes an object only if it does not exist; if it does, it must hold these bytes.
    func writeOnce(_ name: String, _ bytes: [UInt8], contentType: String) async throws {
        do {
            try await blobs.write(name, bytes, contentType: contentType, ifGenerationMatch: 0)
        } catch let error as TollgateError where error.code == .failedPrecondition {
            let stored = try await blobs.read(name)
            guard stored.data == bytes else {
                throw TollgateError(.failedPrecondition, "\(name) exists with other content than a re-run produces")
            }
        }
    }

    // MARK: - Receipts

    /// The accounts whose tier has signed usage receipts, as they stand at export time:
    /// one read each, 32 in flight (a day with 10,000 accounts is seconds, not minutes).
    func accountsWithReceipts(_ ids: [String]) async throws -> Set<String> {
        let store = self.store
        return try await withThrowingTaskGroup(of: String?.self) { group in
            var found: Set<String> = []
            var next = ids.makeIterator()
            func start() throws {
                guard let id = next.next() else { return }
                let path = try DocumentPath(collection: Account.collection, id: id)
                group.addTask {
                    let account = try await store.get(path)?.decode(Account.self)
                    return account?.hasSignedUsageReceipts == true ? id : nil
                }
            }
            for _ in 0..<32 { try start() }
            while let result = try await group.next() {
                if let id = result { found.insert(id) }
                try start()
            }
            return found
        }
    }

    /// The account's records of the day, in ledger order, in an object of their own, then
    /// its receipt and the receipt's signature; each written once, as the day's objects are.
    /// - Throws: `FAILED_PRECONDITION` when the account's records do not add up to the
    ///   manifest's total for it.
    func writeReceipt(_ day: UTCDay, total: ExportManifest.AccountTotal, manifest: ExportManifest.Link) async throws {
        let layout = configuration.layout
        let writer = try PartWriter(
            name: layout.accountRecords(day, accountId: total.accountId), kind: "account", blobs: blobs,
            chunkBytes: configuration.chunkBytes, level: configuration.compressionLevel)
        try await writer.start()
        let query = UsageRecord.recorded(during: day).filter("accountId", .equal, .string(total.accountId))
            .limit(configuration.pageSize)
        var page = try await store.query(query)
        while true {
            for snapshot in page {
                let line = try ExportRecord.line(snapshot)
                try await writer.append(line: line.bytes, units: line.units, time: line.time)
            }
            guard page.count == configuration.pageSize, let last = page.last else { break }
            page = try await store.query(query.start(after: last))
        }
        let object = try await writer.finish()
        guard object.records == total.records, object.units == total.units else {
            throw TollgateError(
                .failedPrecondition,
                "\(total.accountId) has \(object.records) records (\(object.units) units) on \(day) where the manifest counts \(total.records) (\(total.units))"
            )
        }
        let receipt = UsageReceipt(
            day: day, accountId: total.accountId, object: object, total: total, manifest: manifest, keyId: signer.keyId)
        let bytes = receipt.canonicalBytes
        try await writeOnce(layout.receipt(day, accountId: total.accountId), bytes, contentType: "application/json")
        try await writeSignature(layout.receiptSignature(day, accountId: total.accountId), for: bytes)
    }

    /// A signature is written once; a stored one is kept if it verifies.
    func writeSignature(_ name: String, for document: [UInt8]) async throws {
        let signature = try signer.sign(document)
        do {
            try await blobs.write(name, signature.document, contentType: "application/json", ifGenerationMatch: 0)
        } catch let error as TollgateError where error.code == .failedPrecondition {
            let stored = try ExportSignature(document: try await blobs.read(name).data)
            guard signer.publicKey.isValid(stored, for: document) else {
                throw TollgateError(.failedPrecondition, "\(name) exists and does not verify")
            }
        }
    }

    /// - Returns: whether the task is new.
    func enqueueReport(_ day: UTCDay, _ total: ExportManifest.AccountTotal) async throws -> Bool {
        let body: JSONValue = .object([
            "day": .string(day.description), "accountId": .string(total.accountId), "units": .integer(total.units),
            "records": .integer(total.records),
        ])
        let task = HTTPTask(
            name: ReportTask.name(day: day, accountId: total.accountId), url: configuration.reportURL, body: Array(body.rendered().utf8),
            headers: ["Content-Type": "application/json"])
        do {
            try await tasks.enqueue(task, queue: configuration.reportQueue)
            return true
        } catch let error as TollgateError where error.code == .alreadyExists {
            return false
        }
    }
}

/// The deterministic name of a day's report task for an account.
public enum ReportTask {
    public static func name(day: UTCDay, accountId: String) -> String {
        "report-\(day.description.replacingOccurrences(of: "-", with: ""))-\(Hex.encode(SHA256.hash(data: Array(accountId.utf8)).prefix(16)))"
    }
}

/// One ledger record as an NDJSON line: its fields as plain JSON with sorted keys, times
/// in RFC 3339.
struct ExportRecord {
    var bytes: [UInt8]
    var accountId: String
    var units: Int64
    var time: Timestamp

    static func line(_ snapshot: DocumentSnapshot) throws -> ExportRecord {
        guard case .string(let accountId) = snapshot.fields["accountId"], case .timestamp(let time) = snapshot.fields["time"] else {
            throw TollgateError(.internal, "ledger entry \(snapshot.path) has no accountId or time")
        }
        var units: Int64 = 0
        if case .integer(let value) = snapshot.fields["units"] { units = value }
        // The recorder refuses such units; an entry written before it did must not be billed
        // as is. A person corrects or deletes it, then the export runs again.
        guard InputBounds.usageQuantity.contains(units) else {
            throw TollgateError(
                .failedPrecondition,
                "ledger entry \(snapshot.path) holds \(units) units, outside 0…10⁹ (written before usage had bounds): correct or delete it, then export again"
            )
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        FieldValue.appendPlainJSON(snapshot.fields, to: &bytes)
        return ExportRecord(bytes: bytes, accountId: accountId, units: units, time: time)
    }
}
