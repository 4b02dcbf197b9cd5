import Foundation
import Synchronization
import TollgateModel

/// The `DocumentStore` port on Firestore's v1 REST API (`firestore://PROJECT/DATABASE`,
/// the database defaulting to `(default)`).
///
/// Reads and queries are retried on transient failures; a plain commit only on `ABORTED`
/// (a conflict, not applied: an increment applied twice is a double count), a
/// transaction is re-run on `ABORTED` with `retryTransaction`, as Google's client
/// libraries do.
public struct FirestoreDocumentStore: DocumentStore {
    public let project: String
    public let database: String
    let api: GoogleAPIClient
    /// Results per `runQuery` request; a query without a limit pages with cursors.
    let pageSize: Int

    public init(project: String, database: String = "(default)", api: GoogleAPIClient, pageSize: Int = 1_000) {
        self.project = project
        self.database = database
        self.api = api
        self.pageSize = pageSize
    }

    /// - Throws: `INVALID_ARGUMENT` unless the URL is `firestore://PROJECT[/DATABASE]`.
    public init(url: String, api: GoogleAPIClient) throws {
        guard url.hasPrefix("firestore://") else { throw TollgateError(.invalidArgument, "not a firestore:// URL: \(url)") }
        let parts = url.dropFirst("firestore://".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
            throw TollgateError(.invalidArgument, "a Firestore URL is firestore://PROJECT or firestore://PROJECT/DATABASE: \(url)")
        }
        self.init(project: parts[0], database: parts.count == 2 ? parts[1] : "(default)", api: api)
    }

    var databaseName: String { "projects/\(project)/databases/\(database)" }
    var documentsRoot: String { databaseName + "/documents" }
    func name(_ path: DocumentPath) -> String { documentsRoot + "/" + path.description }
    /// A resource name in a URL path: each segment percent-encoded, the slashes kept.
    func urlPath(_ name: String) -> String {
        "/v1/"
            + name.split(separator: "/", omittingEmptySubsequences: false).map { PercentEncoding.unreserved(String($0)) }
            .joined(separator: "/")
    }

    func path(fromName name: String) throws -> DocumentPath {
        guard name.hasPrefix(documentsRoot + "/") else { throw TollgateError(.unavailable, "firestore returned a foreign name \(name)") }
        return try DocumentPath(String(name.dropFirst(documentsRoot.count + 1)))
    }

    // MARK: - Reads

    public func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try await get(path, transaction: nil)
    }

    func get(_ path: DocumentPath, transaction: String?) async throws -> DocumentSnapshot? {
        // Inside a transaction, read as Google's client libraries do: `batchGet` with the
        // transaction in the body. (`documents.get?transaction=` takes the id as a bytes
        // query parameter, which Google's Firestore emulator never answers.)
        if let transaction { return try await batchGet([path], transaction: transaction)[0] }
        do {
            let response = try await api.send("GET", urlPath(name(path)), idempotent: true)
            return try snapshot(GoogleAPIClient.parse(response.body, service: api.service))
        } catch let error as TollgateError where error.code == .notFound {
            return nil
        }
    }

    /// Several documents in one round trip (`documents:batchGet`), in the order asked,
    /// nil for those that do not exist.
    public func batchGet(_ paths: [DocumentPath], transaction: String? = nil) async throws -> [DocumentSnapshot?] {
        var body: [String: JSONValue] = ["documents": .array(paths.map { .string(name($0)) })]
        if let transaction { body["transaction"] = .string(transaction) }
        let answer = try await api.json("POST", urlPath(documentsRoot) + ":batchGet", body: .object(body), idempotent: true)
        var found: [DocumentPath: DocumentSnapshot] = [:]
        for item in answer.arrayValue ?? [] {
            if let document = item["found"] {
                let snapshot = try snapshot(document)
                found[snapshot.path] = snapshot
            }
        }
        return paths.map { found[$0] }
    }

    func snapshot(_ document: JSONValue) throws -> DocumentSnapshot {
        guard let name = document["name"]?.stringValue, let created = document["createTime"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
            let updated = document["updateTime"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
        else { throw TollgateError(.unavailable, "firestore sent a Document without name, createTime or updateTime") }
        return DocumentSnapshot(
            path: try path(fromName: name), fields: try FirestoreValue.decodeFields(document["fields"]), createTime: created,
            updateTime: updated)
    }

    public func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try await self.query(query, transaction: nil)
    }

    /// Runs the query page by page: each request asks for at most `pageSize` results and
    /// the next starts after the last one, so no single response grows without bound.
    func query(_ query: DocumentQuery, transaction: String?) async throws -> [DocumentSnapshot] {
        try query.validate()
        var results: [DocumentSnapshot] = []
        var page = query
        while true {
            let wanted = query.limit.map { $0 - results.count } ?? Int.max
            if wanted <= 0 { break }
            page.limit = min(wanted, pageSize)
            let documents = try await runQuery(page, transaction: transaction)
            results += documents
            guard documents.count == page.limit, let last = documents.last else { break }
            page = page.start(after: last)
        }
        return results
    }

    func runQuery(_ query: DocumentQuery, transaction: String?) async throws -> [DocumentSnapshot] {
        let (parent, body) = try runQueryRequest(query, transaction: transaction)
        let answer = try await api.json("POST", urlPath(parent) + ":runQuery", body: body, idempotent: true)
        return try (answer.arrayValue ?? []).compactMap { item in try item["document"].map(snapshot) }
    }

    /// The parent resource and the body of a `runQuery` request.
    func runQueryRequest(_ query: DocumentQuery, transaction: String?) throws -> (String, JSONValue) {
        let segments = query.collection.split(separator: "/").map(String.init)
        guard let collectionID = segments.last, segments.count % 2 == 1 else {
            throw TollgateError(.invalidArgument, "not a collection path: \(query.collection)")
        }
        let parent = ([documentsRoot] + segments.dropLast()).joined(separator: "/")
        var structured: [String: JSONValue] = ["from": .array([.object(["collectionId": .string(collectionID)])])]
        let filters = query.filters.map(filter)
        if filters.count == 1 {
            structured["where"] = filters[0]
        } else if !filters.isEmpty {
            structured["where"] = .object(["compositeFilter": .object(["op": .string("AND"), "filters": .array(filters)])])
        }
        let orders = query.effectiveOrders
        structured["orderBy"] = .array(
            orders.map { order in
                .object([
                    "field": .object(["fieldPath": .string(order.field.firestoreEscaped)]),
                    "direction": .string(order.descending ? "DESCENDING" : "ASCENDING"),
                ])
            })
        if let start = query.start {
            let values = zip(orders, start.values).map { order, value in
                order.field.description == "__name__" ? reference(value) : FirestoreValue.encode(value)
            }
            structured["startAt"] = .object(["values": .array(values), "before": .bool(start.before)])
        }
        if let limit = query.limit { structured["limit"] = .integer(Int64(limit)) }
        var body: [String: JSONValue] = ["structuredQuery": .object(structured)]
        if let transaction { body["transaction"] = .string(transaction) }
        return (parent, .object(body))
    }

    private func reference(_ value: FieldValue) -> JSONValue {
        guard case .string(let path) = value else { return FirestoreValue.encode(value) }
        return .object(["referenceValue": .string(documentsRoot + "/" + path)])
    }

    /// Null and NaN are matched with unary filters; Firestore refuses them in a field filter.
    private func filter(_ filter: DocumentQuery.Filter) -> JSONValue {
        let field: JSONValue = .object(["fieldPath": .string(filter.field.firestoreEscaped)])
        let unary: String? =
            switch (filter.op, filter.value) {
            case (.equal, .null): "IS_NULL"
            case (.notEqual, .null): "IS_NOT_NULL"
            case (.equal, .double(let d)) where d.isNaN: "IS_NAN"
            case (.notEqual, .double(let d)) where d.isNaN: "IS_NOT_NAN"
            default: nil
            }
        if let unary { return .object(["unaryFilter": .object(["op": .string(unary), "field": field])]) }
        let op =
            switch filter.op {
            case .equal: "EQUAL"
            case .notEqual: "NOT_EQUAL"
            case .lessThan: "LESS_THAN"
            case .lessThanOrEqual: "LESS_THAN_OR_EQUAL"
            case .greaterThan: "GREATER_THAN"
            case .greaterThanOrEqual: "GREATER_THAN_OR_EQUAL"
            case .in: "IN"
            case .arrayContains: "ARRAY_CONTAINS"
            }
        return .object(["fieldFilter": .object(["field": field, "op": .string(op), "value": FirestoreValue.encode(filter.value)])])
    }

    // MARK: - Writes

    /// A plain commit that conflicted with another request was not applied: Firestore
    /// answers `ABORTED` and its error codes say to send it again, so it is, with backoff
    /// and within the deadline. (Any other failure is not: the writes may have landed.)
    public func commitWithResults(_ writes: [Write]) async throws -> CommitResult {
        let policy = GoogleRetryPolicy.default
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await commit(writes, transaction: nil)
            } catch let error as TollgateError where error.code == .aborted && attempt < policy.maxAttempts {
                let pause = policy.backoff(retry: attempt)
                if let left = Deadline.remaining, pause >= left { throw error }
                try await Task.sleep(for: pause)
            }
        }
    }

    func commit(_ writes: [Write], transaction: String?) async throws -> CommitResult {
        guard writes.count <= FirestoreLimits.maxWritesPerCommit else {
            throw TollgateError(
                .invalidArgument, "\(writes.count) writes in one commit; Firestore allows \(FirestoreLimits.maxWritesPerCommit)")
        }
        let answer = try await api.json(
            "POST", urlPath(documentsRoot) + ":commit", body: commitRequest(writes, transaction: transaction), idempotent: false)
        guard let time = answer["commitTime"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) else {
            throw TollgateError(.unavailable, "firestore answered a commit without commitTime")
        }
        let writeResults = answer["writeResults"]?.arrayValue ?? []
        let transformResults = try writes.indices.map { index -> [FieldValue] in
            guard !writes[index].transforms.isEmpty else { return [] }
            let values = index < writeResults.count ? writeResults[index]["transformResults"]?.arrayValue ?? [] : []
            guard values.count == writes[index].transforms.count else {
                throw TollgateError(.unavailable, "firestore answered a commit without the results of its transforms")
            }
            return try values.map(FirestoreValue.decode)
        }
        return CommitResult(commitTime: time, transformResults: transformResults)
    }

    func commitRequest(_ writes: [Write], transaction: String?) -> JSONValue {
        var body: [String: JSONValue] = ["writes": .array(writes.map(encode))]
        if let transaction { body["transaction"] = .string(transaction) }
        return .object(body)
    }

    func encode(_ write: Write) -> JSONValue {
        var out: [String: JSONValue] = [:]
        switch write.operation {
        case .set(let fields):
            out["update"] = .object(["name": .string(name(write.path)), "fields": FirestoreValue.encode(fields)])
        case .update(let changes):
            var fields: [String: FieldValue] = [:]
            for (path, value) in changes { if let value { fields.setValue(value, at: path) } }
            out["update"] = .object(["name": .string(name(write.path)), "fields": FirestoreValue.encode(fields)])
            // Present even when empty: no mask would replace the whole document.
            out["updateMask"] = .object([
                "fieldPaths": .array(changes.keys.map { .string($0.firestoreEscaped) }.sorted { $0.stringValue! < $1.stringValue! })
            ])
        case .delete:
            out["delete"] = .string(name(write.path))
        }
        switch write.precondition {
        case .exists(let exists): out["currentDocument"] = .object(["exists": .bool(exists)])
        case .updateTime(let time): out["currentDocument"] = .object(["updateTime": .string(time.rfc3339)])
        case nil: break
        }
        if !write.transforms.isEmpty {
            out["updateTransforms"] = .array(
                write.transforms.map { transform in
                    switch transform {
                    case .increment(let path, let value):
                        .object(["fieldPath": .string(path.firestoreEscaped), "increment": FirestoreValue.encode(value)])
                    case .maximum(let path, let value):
                        .object(["fieldPath": .string(path.firestoreEscaped), "maximum": FirestoreValue.encode(value)])
                    case .minimum(let path, let value):
                        .object(["fieldPath": .string(path.firestoreEscaped), "minimum": FirestoreValue.encode(value)])
                    case .serverTimestamp(let path):
                        .object(["fieldPath": .string(path.firestoreEscaped), "setToServerValue": .string("REQUEST_TIME")])
                    }
                })
        }
        return .object(out)
    }

    // MARK: - Transactions

    public func runTransaction<T: Sendable>(
        maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T
    ) async throws -> T {
        var attempt = 0
        var previous: String?
        while true {
            attempt += 1
            let id = try await beginTransaction(retrying: previous)
            let transaction = FirestoreTransaction(store: self, id: id)
            do {
                let result = try await body(transaction)
                _ = try await commit(transaction.writes, transaction: id)
                return result
            } catch let error as TollgateError where error.code == .aborted && attempt < maxAttempts {
                // Contention: the server already released the transaction; run the body again.
                previous = id
                try await Task.sleep(for: GoogleRetryPolicy.default.backoff(retry: attempt))
            } catch {
                if error.tollgateCode != .aborted { await rollback(id) }
                throw error
            }
        }
    }

    func beginTransaction(retrying previous: String?) async throws -> String {
        var readWrite: [String: JSONValue] = [:]
        if let previous { readWrite["retryTransaction"] = .string(previous) }
        let answer = try await api.json(
            "POST", urlPath(documentsRoot) + ":beginTransaction", body: .object(["options": .object(["readWrite": .object(readWrite)])]),
            idempotent: true)
        guard let id = answer["transaction"]?.stringValue else {
            throw TollgateError(.unavailable, "firestore answered beginTransaction without a transaction")
        }
        return id
    }

    /// Best effort: a transaction not rolled back holds its locks until it times out, and
    /// every other writer of what it read waits for them. Sent apart from the request, with
    /// a few seconds of its own: the request's deadline may be what ended the transaction.
    func rollback(_ id: String) async {
        let (api, path) = (self.api, urlPath(documentsRoot) + ":rollback")
        Task.detached {
            await Deadline.$current.withValue(.now + .seconds(5)) {
                _ = try? await api.json("POST", path, body: .object(["transaction": .string(id)]), idempotent: true)
            }
        }
    }
}

/// Reads inside the transaction (the server locks what they see); writes buffered and
/// sent with the commit.
final class FirestoreTransaction: DocumentTransaction {
    private let store: FirestoreDocumentStore
    let id: String
    private let buffered = Mutex<[Write]>([])

    init(store: FirestoreDocumentStore, id: String) {
        self.store = store
        self.id = id
    }

    var writes: [Write] { buffered.withLock { $0 } }

    private func checkNoWrites() throws {
        if buffered.withLock({ !$0.isEmpty }) {
            throw TollgateError(.invalidArgument, "Firestore transactions require all reads to be executed before all writes")
        }
    }

    func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try checkNoWrites()
        return try await store.get(path, transaction: id)
    }

    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try checkNoWrites()
        return try await store.query(query, transaction: id)
    }

    func write(_ write: Write) throws {
        try buffered.withLock { writes in
            guard writes.count < FirestoreLimits.maxWritesPerCommit else {
                throw TollgateError(.invalidArgument, "over \(FirestoreLimits.maxWritesPerCommit) writes in one transaction")
            }
            writes.append(write)
        }
    }
}
