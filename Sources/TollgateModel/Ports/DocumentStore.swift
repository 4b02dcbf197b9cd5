/// Documents with Firestore's semantics: exactly what Firestore can do, no more, so that
/// the SQLite fake and the Firestore driver are interchangeable.
///
/// - `create` fails with `ALREADY_EXISTS` when the document exists.
/// - `update` fails with `NOT_FOUND` when it does not, and with `FAILED_PRECONDITION`
///   when an update-time precondition does not hold.
/// - A commit holds at most 500 writes and is atomic; documents are at most 1 MiB.
/// - Transactions read before they write, and are retried on contention (`ABORTED`).
public protocol DocumentStore: Sendable {
    /// The document, or nil when it does not exist.
    func get(_ path: DocumentPath) async throws -> DocumentSnapshot?

    /// Applies every write atomically, or none, and answers what each write's transforms
    /// left in their fields (Firestore's `CommitResponse`).
    /// - Throws: `INVALID_ARGUMENT` (over 500 writes, over 1 MiB), `ALREADY_EXISTS`,
    ///   `NOT_FOUND`, `FAILED_PRECONDITION`, `UNAVAILABLE`.
    func commitWithResults(_ writes: [Write]) async throws -> CommitResult

    /// Runs `body` in a transaction: its reads see one consistent snapshot and its writes
    /// commit only if nothing it read has changed since; otherwise the whole body runs
    /// again, up to `maxAttempts` times (Firestore's client libraries default to 5).
    func runTransaction<T: Sendable>(
        maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T
    ) async throws -> T

    /// The documents matching the query, in its order.
    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot]
}

/// What a commit answers: its time, and per write the value each of its transforms left
/// in its field, in the order given (Firestore's `WriteResult.transformResults`). An
/// increment by 0 reads a numeric field in the same atomic step as the other transforms.
public struct CommitResult: Sendable, Hashable {
    public var commitTime: Timestamp
    public var transformResults: [[FieldValue]]

    public init(commitTime: Timestamp, transformResults: [[FieldValue]]) {
        self.commitTime = commitTime
        self.transformResults = transformResults
    }
}

extension DocumentStore {
    /// Applies every write atomically, or none (``commitWithResults(_:)`` without the results).
    @discardableResult
    public func commit(_ writes: [Write]) async throws -> Timestamp {
        try await commitWithResults(writes).commitTime
    }

    public func runTransaction<T: Sendable>(
        _ body: @Sendable (DocumentTransaction) async throws -> T
    ) async throws -> T {
        try await runTransaction(maxAttempts: 5, body)
    }

    /// Creates the document. - Throws: `ALREADY_EXISTS` when it exists.
    @discardableResult
    public func create(_ path: DocumentPath, _ fields: [String: FieldValue]) async throws -> Timestamp {
        try await commit([.create(path, fields)])
    }

    /// Writes the whole document, creating or replacing it.
    @discardableResult
    public func set(_ path: DocumentPath, _ fields: [String: FieldValue]) async throws -> Timestamp {
        try await commit([.set(path, fields)])
    }

    /// Changes the named fields (dotted paths; nil deletes) of an existing document.
    @discardableResult
    public func update(
        _ path: DocumentPath, _ fields: [FieldPath: FieldValue?], lastUpdate: Timestamp? = nil
    ) async throws -> Timestamp {
        try await commit([.update(path, fields, precondition: lastUpdate.map { .updateTime($0) } ?? .exists(true))])
    }

    /// Deletes the document; deleting a missing document succeeds, as in Firestore.
    @discardableResult
    public func delete(_ path: DocumentPath, precondition: Write.Precondition? = nil) async throws -> Timestamp {
        try await commit([.delete(path, precondition: precondition)])
    }

    /// Adds `amount` to a numeric field atomically (created as `amount` when absent).
    @discardableResult
    public func increment(_ path: DocumentPath, _ field: FieldPath, by amount: Int64) async throws -> Timestamp {
        try await commit([Write(path: path, operation: .update([:]), transforms: [.increment(field, .integer(amount))])])
    }
}

/// A transaction's view of the store: reads first, then buffered writes.
public protocol DocumentTransaction: Sendable {
    /// - Throws: `INVALID_ARGUMENT` once the transaction has buffered a write.
    func get(_ path: DocumentPath) async throws -> DocumentSnapshot?
    /// - Throws: `INVALID_ARGUMENT` once the transaction has buffered a write.
    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot]
    /// Buffers a write, applied when the transaction commits.
    /// - Throws: `INVALID_ARGUMENT` past 500 writes.
    func write(_ write: Write) throws
}

extension DocumentTransaction {
    public func create(_ path: DocumentPath, _ fields: [String: FieldValue]) throws { try write(.create(path, fields)) }
    public func set(_ path: DocumentPath, _ fields: [String: FieldValue]) throws { try write(.set(path, fields)) }
    public func update(_ path: DocumentPath, _ fields: [FieldPath: FieldValue?]) throws {
        try write(.update(path, fields))
    }
    public func delete(_ path: DocumentPath) throws { try write(.delete(path)) }
}

/// One write of a commit, shaped like Firestore's `Write`.
public struct Write: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        /// Replace the whole document.
        case set([String: FieldValue])
        /// Change only these field paths (nil deletes the field), like an update mask.
        case update([FieldPath: FieldValue?])
        case delete
    }

    public enum Precondition: Sendable, Hashable {
        case exists(Bool)
        case updateTime(Timestamp)
    }

    /// A server-side change applied after the operation, like Firestore's `FieldTransform`.
    public enum Transform: Sendable, Hashable {
        /// Integer arithmetic when both are integers (saturating), else double.
        case increment(FieldPath, FieldValue)
        case maximum(FieldPath, FieldValue)
        case minimum(FieldPath, FieldValue)
        /// The commit time.
        case serverTimestamp(FieldPath)

        /// The field it changes.
        public var field: FieldPath {
            switch self {
            case .increment(let path, _), .maximum(let path, _), .minimum(let path, _), .serverTimestamp(let path): path
            }
        }
    }

    public var path: DocumentPath
    public var operation: Operation
    public var precondition: Precondition?
    public var transforms: [Transform]

    public init(path: DocumentPath, operation: Operation, precondition: Precondition? = nil, transforms: [Transform] = []) {
        self.path = path
        self.operation = operation
        self.precondition = precondition
        self.transforms = transforms
    }

    public static func create(_ path: DocumentPath, _ fields: [String: FieldValue], transforms: [Transform] = []) -> Write {
        Write(path: path, operation: .set(fields), precondition: .exists(false), transforms: transforms)
    }

    public static func set(_ path: DocumentPath, _ fields: [String: FieldValue], transforms: [Transform] = []) -> Write {
        Write(path: path, operation: .set(fields), transforms: transforms)
    }

    public static func update(
        _ path: DocumentPath, _ fields: [FieldPath: FieldValue?], precondition: Precondition = .exists(true),
        transforms: [Transform] = []
    ) -> Write {
        Write(path: path, operation: .update(fields), precondition: precondition, transforms: transforms)
    }

    public static func delete(_ path: DocumentPath, precondition: Precondition? = nil) -> Write {
        Write(path: path, operation: .delete, precondition: precondition)
    }
}

/// A query over one collection: field filters, order, limit and cursors — no joins,
/// no arbitrary expressions, as in Firestore.
public struct DocumentQuery: Sendable, Hashable {
    public enum Operator: String, Sendable, Hashable {
        case equal = "=="
        case notEqual = "!="
        case lessThan = "<"
        case lessThanOrEqual = "<="
        case greaterThan = ">"
        case greaterThanOrEqual = ">="
        case `in` = "in"
        case arrayContains = "array-contains"

        var isInequality: Bool { [.notEqual, .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual].contains(self) }
    }

    public struct Filter: Sendable, Hashable {
        public var field: FieldPath
        public var op: Operator
        public var value: FieldValue
        public init(_ field: FieldPath, _ op: Operator, _ value: FieldValue) {
            self.field = field
            self.op = op
            self.value = value
        }
    }

    public struct Order: Sendable, Hashable {
        public var field: FieldPath
        public var descending: Bool
        public init(_ field: FieldPath, descending: Bool = false) {
            self.field = field
            self.descending = descending
        }
    }

    /// A position in the query's order: the values of its order fields, then the
    /// document name (Firestore's implicit last order).
    public struct Cursor: Sendable, Hashable {
        public var values: [FieldValue]
        public var before: Bool
        public init(values: [FieldValue], before: Bool) {
            self.values = values
            self.before = before
        }
    }

    public var collection: String
    public var filters: [Filter] = []
    public var orders: [Order] = []
    public var limit: Int?
    public var start: Cursor?

    public init(collection: String) { self.collection = collection }

    public func filter(_ field: FieldPath, _ op: Operator, _ value: FieldValue) -> DocumentQuery {
        var copy = self
        copy.filters.append(Filter(field, op, value))
        return copy
    }

    public func order(by field: FieldPath, descending: Bool = false) -> DocumentQuery {
        var copy = self
        copy.orders.append(Order(field, descending: descending))
        return copy
    }

    public func limit(_ count: Int) -> DocumentQuery {
        var copy = self
        copy.limit = count
        return copy
    }

    /// Continues after `snapshot`, which must be a result of the same query.
    public func start(after snapshot: DocumentSnapshot) -> DocumentQuery {
        var copy = self
        let values = copy.effectiveOrders.map { order in
            order.field.description == "__name__" ? .string(snapshot.path.description) : snapshot.fields.value(at: order.field) ?? .null
        }
        copy.start = Cursor(values: values, before: false)
        return copy
    }

    /// The order Firestore applies: an inequality field first when none is given, then
    /// the explicit orders, then the document name in the direction of the last order.
    public var effectiveOrders: [Order] {
        var orders = self.orders
        if orders.isEmpty, let inequality = filters.first(where: { $0.op.isInequality }) {
            orders.append(Order(inequality.field))
        }
        if !orders.contains(where: { $0.field.description == "__name__" }) {
            orders.append(Order("__name__", descending: orders.last?.descending ?? false))
        }
        return orders
    }

    /// - Throws: `INVALID_ARGUMENT` for what Firestore refuses: inequalities on two fields
    ///   (before multi-field inequality support), an inequality field not ordered first,
    ///   a negative limit, an `in` without an array of at most 30 values;
    ///   `FAILED_PRECONDITION` for a query ordered first by document name descending, which
    ///   Google's Firestore emulator refuses ("does not support descending key scans").
    public func validate() throws {
        if let first = effectiveOrders.first, first.field.description == "__name__", first.descending {
            throw TollgateError(.failedPrecondition, "Firestore does not support descending key scans; order by a field first")
        }
        let inequalityFields = Set(filters.filter { $0.op.isInequality }.map(\.field))
        if let field = inequalityFields.first {
            guard inequalityFields.count == 1 else {
                throw TollgateError(.invalidArgument, "inequality filters on more than one field")
            }
            if let first = orders.first, first.field != field {
                throw TollgateError(.invalidArgument, "the first order must be on the inequality field \(field)")
            }
        }
        for filter in filters where filter.op == .in {
            guard case .array(let values) = filter.value, !values.isEmpty, values.count <= 30 else {
                throw TollgateError(.invalidArgument, "'in' takes an array of 1 to 30 values")
            }
        }
        if let limit, limit < 0 { throw TollgateError(.invalidArgument, "negative limit") }
    }

    /// Whether a document satisfies every filter, with Firestore's rules: a filter on
    /// a missing field never matches; `!=` does not match null or a missing field.
    public func matches(_ fields: [String: FieldValue]) -> Bool {
        for filter in filters {
            guard let value = fields.value(at: filter.field) else { return false }
            let c = FieldValue.compare(value, filter.value)
            let comparable = value.typeRank == filter.value.typeRank
            switch filter.op {
            case .equal: if c != 0 { return false }
            case .notEqual: if c == 0 || value == .null { return false }
            case .lessThan: if !comparable || c >= 0 { return false }
            case .lessThanOrEqual: if !comparable || c > 0 { return false }
            case .greaterThan: if !comparable || c <= 0 { return false }
            case .greaterThanOrEqual: if !comparable || c < 0 { return false }
            case .in:
                guard case .array(let options) = filter.value,
                    options.contains(where: { FieldValue.compare($0, value) == 0 })
                else { return false }
            case .arrayContains:
                guard case .array(let elements) = value,
                    elements.contains(where: { FieldValue.compare($0, filter.value) == 0 })
                else { return false }
            }
        }
        // Firestore leaves out documents that lack an order-by field.
        for order in orders where order.field.description != "__name__" {
            if fields.value(at: order.field) == nil { return false }
        }
        return true
    }

    /// Sorts, applies the cursor and the limit: the in-memory half of a query, shared
    /// by every driver that cannot push it down.
    public func arrange(_ documents: [DocumentSnapshot]) -> [DocumentSnapshot] {
        var selection = Selection(self)
        for document in documents { selection.offer(document) }
        return selection.result
    }

    /// The in-memory half of a query, fed one matching document at a time: it keeps only
    /// what the cursor and the limit let through, so a page of 200 over a million
    /// documents holds 200, not a million.
    public struct Selection: Sendable {
        private let query: DocumentQuery
        private let orders: [Order]
        private var kept: [(document: DocumentSnapshot, key: [FieldValue])] = []

        public init(_ query: DocumentQuery) {
            self.query = query
            orders = query.effectiveOrders
        }

        public mutating func offer(_ document: DocumentSnapshot) {
            let key = orders.map { order in
                order.field.description == "__name__" ? .string(document.path.description) : document.fields.value(at: order.field) ?? .null
            }
            if let start = query.start {
                let c = compare(key, start.values)
                if start.before ? c < 0 : c <= 0 { return }
            }
            if let limit = query.limit, kept.count == limit {
                guard let last = kept.last, compare(key, last.key) < 0 else { return }
                kept.removeLast()
            }
            // Binary search for the first kept entry that sorts after this one.
            var low = 0
            var high = kept.count
            while low < high {
                let mid = (low + high) / 2
                if compare(kept[mid].key, key) <= 0 { low = mid + 1 } else { high = mid }
            }
            kept.insert((document, key), at: low)
        }

        public var result: [DocumentSnapshot] { kept.map(\.document) }
        public var count: Int { kept.count }

        private func compare(_ a: [FieldValue], _ b: [FieldValue]) -> Int {
            for (index, order) in orders.enumerated() where index < a.count && index < b.count {
                let c =
                    order.field.description == "__name__" ? query.compareNames(a[index], b[index]) : FieldValue.compare(a[index], b[index])
                if c != 0 { return order.descending ? -c : c }
            }
            return 0
        }
    }

    fileprivate func compareNames(_ a: FieldValue, _ b: FieldValue) -> Int {
        guard case .string(let x) = a, case .string(let y) = b,
            let l = try? DocumentPath(x), let r = try? DocumentPath(y)
        else { return FieldValue.compare(a, b) }
        return l == r ? 0 : (l < r ? -1 : 1)
    }
}

extension Write.Transform {
    /// Applies the transform as Firestore does, at the commit's `time`.
    public func apply(to fields: inout [String: FieldValue], at time: Timestamp) {
        switch self {
        case .serverTimestamp(let path):
            // REQUEST_TIME has millisecond precision in Firestore.
            let milliseconds = time.microsecondsSinceEpoch - time.microsecondsSinceEpoch % 1_000
            fields.setValue(.timestamp(Timestamp(microsecondsSinceEpoch: milliseconds)), at: path)
        case .increment(let path, let operand):
            fields.setValue(Self.increment(fields.value(at: path), by: operand), at: path)
        case .maximum(let path, let operand):
            let current = fields.value(at: path)
            if current?.isNumber != true || FieldValue.compare(operand, current!) > 0 { fields.setValue(operand, at: path) }
        case .minimum(let path, let operand):
            let current = fields.value(at: path)
            if current?.isNumber != true || FieldValue.compare(operand, current!) < 0 { fields.setValue(operand, at: path) }
        }
    }

    /// Firestore's increment: integer arithmetic saturating at the 64-bit bounds when both
    /// sides are integers; a missing or non-numeric field becomes the operand.
    static func increment(_ current: FieldValue?, by operand: FieldValue) -> FieldValue {
        switch (current, operand) {
        case (.integer(let a), .integer(let b)):
            let (sum, overflow) = a.addingReportingOverflow(b)
            return .integer(overflow ? (b > 0 ? Int64.max : Int64.min) : sum)
        case (.some(let a), _) where a.isNumber && operand.isNumber:
            return .double(a.numericValue + operand.numericValue)
        default:
            return operand
        }
    }
}
