import TollgateModel

/// A document store that takes as long as Firestore does: each call waits `roundTrip`
/// before it runs, and a transaction waits to begin, per read and before it commits. The
/// SQLite fake's transactions are optimistic (validated at commit, `ABORTED` and run again
/// when something read has changed), so contention shows as retries where Firestore's
/// pessimistic transactions would queue on the document's lock. Set with
/// `TOLLGATE_STORE_LATENCY_MS` on a `sqlite:` store, to run leases and the strict path with
/// the cloud's round trips on a laptop; never in production.
struct LatentDocumentStore: DocumentStore {
    let inner: any DocumentStore
    let roundTrip: Duration

    func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try await Task.sleep(for: roundTrip)
        return try await inner.get(path)
    }

    func commitWithResults(_ writes: [Write]) async throws -> CommitResult {
        try await Task.sleep(for: roundTrip)
        return try await inner.commitWithResults(writes)
    }

    func runTransaction<T: Sendable>(maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T) async throws -> T {
        try await Task.sleep(for: roundTrip)
        let roundTrip = self.roundTrip
        return try await inner.runTransaction(maxAttempts: maxAttempts) { transaction in
            let result = try await body(LatentTransaction(inner: transaction, roundTrip: roundTrip))
            try await Task.sleep(for: roundTrip)
            return result
        }
    }

    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try await Task.sleep(for: roundTrip)
        return try await inner.query(query)
    }
}

struct LatentTransaction: DocumentTransaction {
    let inner: any DocumentTransaction
    let roundTrip: Duration

    func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        try await Task.sleep(for: roundTrip)
        return try await inner.get(path)
    }

    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        try await Task.sleep(for: roundTrip)
        return try await inner.query(query)
    }

    func write(_ write: Write) throws { try inner.write(write) }
}
