import Foundation
import GRDB
import Synchronization
import TollgateModel

/// The `DocumentStore` fake: documents as rows of Firestore REST `Value` JSON, with
/// Firestore's preconditions, limits and optimistic transactions (a transaction whose
/// reads changed before it commits fails with `ABORTED` and is retried).
public struct SQLiteDocumentStore: DocumentStore {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    public func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try await database.read { db in try Self.fetch(db, path) }
    }

    public func commitWithResults(_ writes: [Write]) async throws -> CommitResult {
        try Self.checkCount(writes.count)
        return try await database.write { db in try self.apply(writes, db) }
    }

    public func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try query.validate()
        return try await database.read { db in try Self.run(query, db) }
    }

    public func runTransaction<T: Sendable>(
        maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let transaction = SQLiteTransaction(store: self)
            do {
                let result = try await body(transaction)
                let (reads, queries, writes) = transaction.finish()
                try await database.write { db in
                    try Self.validate(reads: reads, queries: queries, db)
                    if !writes.isEmpty { _ = try self.apply(writes, db) }
                }
                return result
            } catch let error as TollgateError where error.code == .aborted && attempt < maxAttempts {
                // Contention: back off a little, then run the whole body again.
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 << min(attempt, 5)))))
            }
        }
    }

    // MARK: - Internals shared with the transaction

    static func checkCount(_ count: Int) throws {
        guard count <= FirestoreLimits.maxWritesPerCommit else {
            throw TollgateError(.invalidArgument, "\(count) writes in one commit; Firestore allows \(FirestoreLimits.maxWritesPerCommit)")
        }
    }

    static func fetch(_ db: Database, _ path: DocumentPath) throws -> DocumentSnapshot? {
        guard
            let row = try Row.fetchOne(
                try db.cachedStatement(sql: "SELECT fields, create_time, update_time FROM documents WHERE collection = ? AND id = ?"),
                arguments: [SQLiteKey.encode(path.collection), SQLiteKey.encode(path.id)])
        else { return nil }
        return try snapshot(path, row)
    }

    static func snapshot(_ path: DocumentPath, _ row: Row) throws -> DocumentSnapshot {
        let fields = try decodeFields(row["fields"])
        return DocumentSnapshot(
            path: path, fields: fields, createTime: Timestamp(microsecondsSinceEpoch: row["create_time"]),
            updateTime: Timestamp(microsecondsSinceEpoch: row["update_time"]))
    }

    /// A stored document's fields: the fast reader, or `JSONDecoder` for what it refuses.
    static func decodeFields(_ json: String) throws -> [String: FieldValue] {
        if let fields = FieldValueJSON.parseFields(json) { return fields }
        return try JSONDecoder().decode([String: FieldValue].self, from: Data(json.utf8))
    }

    static func run(_ query: DocumentQuery, _ db: Database) throws -> [DocumentSnapshot] {
        if let plan = IndexedRange(query) { return try run(query, plan, db) }
        // Filters, order and cursors are evaluated with Firestore's value order, in Swift,
        // so the fake cannot drift from the semantics by leaning on SQL's.
        let rows = try Row.fetchCursor(
            db, sql: "SELECT id, fields, create_time, update_time FROM documents WHERE collection = ?",
            arguments: [SQLiteKey.encode(query.collection)])
        let collection = try DocumentPath.Collection(query.collection)
        var selection = DocumentQuery.Selection(query)
        while let row = try rows.next() {
            let snapshot = try snapshot(try collection.document(SQLiteKey.decode(row["id"])), row)
            if query.matches(snapshot.fields) { selection.offer(snapshot) }
        }
        return selection.result
    }

    /// Timestamp fields with an SQLite expression index, so a range query ordered by one
    /// of them reads only its range (Firestore indexes every field; the fake indexes the
    /// ones Tollgate's queries range over: the ledger, windows, expiries, dead letters).
    static let indexedTimestampFields = ["recorded", "time", "end", "received", "expires", "revoked"]

    /// The field's timestamp as text that sorts chronologically: `Timestamp.rfc3339`
    /// leaves out a zero fraction, so whole seconds get `.000000` added. NULL for a
    /// missing field or one of another type.
    static func sortableTime(_ field: String) -> String {
        let value = "json_extract(fields, '$.\(field).timestampValue')"
        return "(CASE WHEN length(\(value)) = 20 THEN substr(\(value), 1, 19) || '.000000Z' ELSE \(value) END)"
    }

    static func sortable(_ time: Timestamp) -> String {
        let text = time.rfc3339
        return text.utf8.count == 20 ? String(text.dropLast()) + ".000000Z" : text
    }

    /// A query the index can narrow: ascending on an indexed timestamp field (then the
    /// name), with a range on that field. SQL only narrows and orders; every document
    /// it yields still passes through the same Swift filters, cursor and limit.
    struct IndexedRange {
        var field: String
        var conditions: [String] = []
        var arguments: [DatabaseValueConvertible] = []

        init?(_ query: DocumentQuery) {
            let orders = query.effectiveOrders
            guard orders.count == 2, !orders[0].descending, !orders[1].descending, orders[1].field.description == "__name__",
                orders[0].field.segments.count == 1, SQLiteDocumentStore.indexedTimestampFields.contains(orders[0].field.description)
            else { return nil }
            field = orders[0].field.description
            // One lower and one upper bound, the tightest of the filters and the cursor:
            // SQLite ranges an index by one bound on each side and filters the rest.
            var lower: (time: Timestamp, inclusive: Bool)?
            var upper: (time: Timestamp, inclusive: Bool)?
            func raise(_ time: Timestamp, _ inclusive: Bool) {
                if let current = lower, current.time > time || (current.time == time && !current.inclusive) { return }
                lower = (time, inclusive)
            }
            func lowerCeiling(_ time: Timestamp, _ inclusive: Bool) {
                if let current = upper, current.time < time || (current.time == time && !current.inclusive) { return }
                upper = (time, inclusive)
            }
            for filter in query.filters where filter.field == orders[0].field {
                guard case .timestamp(let time) = filter.value else { continue }
                switch filter.op {
                case .equal:
                    raise(time, true)
                    lowerCeiling(time, true)
                case .lessThan: lowerCeiling(time, false)
                case .lessThanOrEqual: lowerCeiling(time, true)
                case .greaterThan: raise(time, false)
                case .greaterThanOrEqual: raise(time, true)
                default: continue
                }
            }
            // Only a range on a timestamp excludes every value of another type.
            guard lower != nil || upper != nil else { return nil }
            if let start = query.start, case .timestamp(let time) = start.values.first { raise(time, true) }
            let expression = SQLiteDocumentStore.sortableTime(field)
            if let lower {
                conditions.append("\(expression) \(lower.inclusive ? ">=" : ">") ?")
                arguments.append(SQLiteDocumentStore.sortable(lower.time))
            } else {
                conditions.append("\(expression) IS NOT NULL")
            }
            if let upper {
                conditions.append("\(expression) \(upper.inclusive ? "<=" : "<") ?")
                arguments.append(SQLiteDocumentStore.sortable(upper.time))
            }
        }
    }

    static func run(_ query: DocumentQuery, _ plan: IndexedRange, _ db: Database) throws -> [DocumentSnapshot] {
        let expression = sortableTime(plan.field)
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT id, fields, create_time, update_time, \(expression) AS sort_key FROM documents
                WHERE collection = ? AND \(plan.conditions.joined(separator: " AND ")) ORDER BY \(expression), id
                """,
            arguments: StatementArguments([SQLiteKey.encode(query.collection)] + plan.arguments))
        let collection = try DocumentPath.Collection(query.collection)
        var selection = DocumentQuery.Selection(query)
        var boundary: String?
        while let row = try rows.next() {
            let key: String = row["sort_key"]
            // Once the page is full, only ties on the sort key can still change it.
            if let boundary, key != boundary { break }
            let snapshot = try snapshot(try collection.document(SQLiteKey.decode(row["id"])), row)
            if query.matches(snapshot.fields) { selection.offer(snapshot) }
            if boundary == nil, let limit = query.limit, selection.count >= limit { boundary = key }
        }
        return selection.result
    }

    static func validate(reads: [DocumentPath: Timestamp?], queries: [(DocumentQuery, [DocumentPath: Timestamp])], _ db: Database) throws {
        for (path, seen) in reads where try fetch(db, path)?.updateTime != seen {
            throw TollgateError(.aborted, "transaction aborted: \(path) changed since it was read")
        }
        for (query, seen) in queries {
            let now = try run(query, db)
            guard now.count == seen.count, now.allSatisfy({ seen[$0.path] == $0.updateTime }) else {
                throw TollgateError(.aborted, "transaction aborted: results of a query on \(query.collection) changed")
            }
        }
    }

    func apply(_ writes: [Write], _ db: Database) throws -> CommitResult {
        let commitTime = try database.nextCommitTime(db)
        var transformResults: [[FieldValue]] = []
        for write in writes {
            let current = try Self.fetch(db, write.path)
            try Self.check(write.precondition, current, write)
            var fields: [String: FieldValue]
            switch write.operation {
            case .delete:
                try db.cachedStatement(sql: "DELETE FROM documents WHERE collection = ? AND id = ?")
                    .execute(arguments: [SQLiteKey.encode(write.path.collection), SQLiteKey.encode(write.path.id)])
                transformResults.append([])
                continue
            case .set(let newFields):
                try Self.validateFieldNames(newFields)
                fields = newFields
            case .update(let changes):
                fields = current?.fields ?? [:]
                for (path, value) in changes {
                    try Self.validateFieldPath(path)
                    fields.setValue(value, at: path)
                }
            }
            for transform in write.transforms { transform.apply(to: &fields, at: commitTime) }
            transformResults.append(write.transforms.map { fields.value(at: $0.field) ?? .null })
            try FirestoreLimits.validate(fields, at: write.path)
            var encoded: [UInt8] = []
            FieldValue.appendValueJSON(fields, to: &encoded)
            let json = String(decoding: encoded, as: UTF8.self)
            // Cached statements: the hot path compiles each statement once per connection.
            try db.cachedStatement(
                sql: """
                    INSERT INTO documents (collection, id, fields, create_time, update_time) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (collection, id) DO UPDATE SET fields = excluded.fields, update_time = excluded.update_time
                    """
            ).execute(
                arguments: [
                    SQLiteKey.encode(write.path.collection), SQLiteKey.encode(write.path.id), json, commitTime.microsecondsSinceEpoch,
                    commitTime.microsecondsSinceEpoch,
                ])
        }
        return CommitResult(commitTime: commitTime, transformResults: transformResults)
    }

    static func check(_ precondition: Write.Precondition?, _ current: DocumentSnapshot?, _ write: Write) throws {
        switch precondition {
        case nil: return
        case .exists(false) where current != nil:
            throw TollgateError(.alreadyExists, "document already exists: \(write.path)")
        case .exists(true) where current == nil:
            throw TollgateError(.notFound, "no document to \(write.operation == .delete ? "delete" : "update"): \(write.path)")
        case .updateTime(let expected) where current?.updateTime != expected:
            throw TollgateError(.failedPrecondition, "the stored version of \(write.path) does not match the required update time")
        default: return
        }
    }

    static func validateFieldNames(_ fields: [String: FieldValue]) throws {
        for (name, value) in fields {
            guard !name.isEmpty, name.utf8.count <= 1_500, !(name.hasPrefix("__") && name.hasSuffix("__")) else {
                throw TollgateError(.invalidArgument, "invalid field name '\(name)'")
            }
            if case .map(let nested) = value { try validateFieldNames(nested) }
        }
    }

    static func validateFieldPath(_ path: FieldPath) throws {
        guard path.segments.allSatisfy({ !$0.isEmpty && !($0.hasPrefix("__") && $0.hasSuffix("__")) }) else {
            throw TollgateError(.invalidArgument, "invalid field path '\(path)'")
        }
    }
}

/// A transaction in progress: records what it read (and the version it saw) so the
/// commit can refuse if any of it changed; refuses reads after the first write.
final class SQLiteTransaction: DocumentTransaction {
    private struct State {
        var reads: [DocumentPath: Timestamp?] = [:]
        var queries: [(DocumentQuery, [DocumentPath: Timestamp])] = []
        var writes: [Write] = []
    }

    private let store: SQLiteDocumentStore
    private let state = Mutex(State())

    init(store: SQLiteDocumentStore) { self.store = store }

    private func checkNoWrites() throws {
        if state.withLock({ !$0.writes.isEmpty }) {
            throw TollgateError(.invalidArgument, "Firestore transactions require all reads to be executed before all writes")
        }
    }

    func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try checkNoWrites()
        let snapshot = try await store.get(path)
        state.withLock { $0.reads[path] = .some(snapshot?.updateTime) }
        return snapshot
    }

    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try checkNoWrites()
        let results = try await store.query(query)
        state.withLock { $0.queries.append((query, Dictionary(uniqueKeysWithValues: results.map { ($0.path, $0.updateTime) }))) }
        return results
    }

    func write(_ write: Write) throws {
        try state.withLock { state in
            try SQLiteDocumentStore.checkCount(state.writes.count + 1)
            state.writes.append(write)
        }
    }

    func finish() -> ([DocumentPath: Timestamp?], [(DocumentQuery, [DocumentPath: Timestamp])], [Write]) {
        state.withLock { ($0.reads, $0.queries, $0.writes) }
    }
}
