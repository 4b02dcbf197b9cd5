import Foundation
import Synchronization
import TollgateModel
import TollgateQuota

/// Every task of a simulation runs here, one job at a time in the order enqueued, so a
/// seed gives one run.
package final class SerialTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: the queue is the only state, and DispatchQueue is thread-safe.
    private let queue = DispatchQueue(label: "tollgate.simulation")

    package init() {}

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Virtual time for a simulation: events in time order, each resumed alone, and the
/// simulation waits until everything it set off is parked again before the next one.
/// Deterministic because every task runs on one ``SerialTaskExecutor`` (the quota paths
/// start their background tasks through the scheduler's ``spawner``).
package final class SimulationScheduler: Sendable, TollgateModel.Clock {
    private struct Event {
        var time: Int64
        var sequence: Int
        var action: @Sendable () -> Void
    }

    private struct State {
        var now: Int64
        var events: [Event] = []
        var sequence = 0
        /// Bumped by everything a simulated task does through the scheduler.
        var activity = 0
    }

    private let state: Mutex<State>
    package let executor = SerialTaskExecutor()

    package init(start: Timestamp) { state = Mutex(State(now: start.microsecondsSinceEpoch)) }

    /// Starts tasks on the simulation's executor, noting them as activity.
    package var spawner: TaskSpawner {
        TaskSpawner { [self] operation in
            noteActivity()
            return Task(executorPreference: executor) { try await operation() }
        }
    }

    package func now() -> Timestamp { Timestamp(microsecondsSinceEpoch: state.withLock { $0.now }) }

    /// Runs `action` at `time` (virtual), after every event already due then.
    package func at(_ time: Timestamp, _ action: @escaping @Sendable () -> Void) {
        state.withLock { state in
            state.sequence += 1
            let event = Event(time: max(time.microsecondsSinceEpoch, state.now), sequence: state.sequence, action: action)
            // Few events are pending at once (requests in flight, one arrival per stream).
            let index = state.events.partitionPoint { ($0.time, $0.sequence) > (event.time, event.sequence) }
            state.events.insert(event, at: index)
            state.activity += 1
        }
    }

    /// Waits `duration` of virtual time.
    package func sleep(_ duration: Duration) async {
        let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        await withCheckedContinuation { continuation in
            at(now().adding(microseconds: microseconds)) { continuation.resume() }
        }
    }

    package func noteActivity() { state.withLock { $0.activity += 1 } }

    /// Runs events until none is due before `end`, then leaves the clock at `end`.
    package func run(until end: Timestamp) async {
        while let event = state.withLock({ state -> Event? in
            guard let last = state.events.last, last.time <= end.microsecondsSinceEpoch else { return nil }
            state.now = last.time
            return state.events.removeLast()
        }) {
            event.action()
            await settle()

        }
        state.withLock { $0.now = max($0.now, end.microsecondsSinceEpoch) }
    }

    /// Yields until three yields in a row see nothing new happen.
    package func settle() async {
        var quiet = 0
        var seen = state.withLock { $0.activity }
        while quiet < 3 {
            await Task.yield()
            let activity = state.withLock { $0.activity }
            quiet = activity == seen ? quiet + 1 : 0
            seen = activity
        }
    }
}

extension Array {
    /// The first index whose element is not `belongsFirst`, for a partitioned array.
    fileprivate func partitionPoint(_ belongsFirst: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsFirst(self[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

extension Timestamp {
    fileprivate func adding(microseconds: Int64) -> Timestamp { Timestamp(microsecondsSinceEpoch: microsecondsSinceEpoch + microseconds) }
}

/// A model of Firestore for the quota paths, in virtual time: round trips drawn from a
/// latency distribution, pessimistic transactions that lock each document they read until
/// they commit (waiters queue in order), `ABORTED` for a transaction that waits on a lock
/// longer than `lockTimeout`, retried by `runTransaction` with backoff as the client
/// libraries do, and every committed write counted per document and second.
package final class SimulatedFirestore: DocumentStore {
    package struct Latency: Sendable {
        /// Medians of one round trip, in milliseconds.
        package var begin = 8.0
        package var get = 6.0
        package var commit = 15.0
        /// The server's time to apply one write to a document, under its lock.
        package var apply = 2.0
        /// Spread of the log-normal around each median.
        package var sigma = 0.4
        /// Extra time on every round trip between these seconds of the run (a spike).
        package var spike: (from: Timestamp, to: Timestamp, extra: Double)?
        package init() {}
    }

    private struct Document {
        var fields: [String: FieldValue]
        var created: Timestamp
        var updated: Timestamp
    }

    private struct Lock {
        var holder: Int
        var waiters: [(transaction: Int, resume: @Sendable (Bool) -> Void)] = []
    }

    private struct State {
        var documents: [DocumentPath: Document] = [:]
        var locks: [DocumentPath: Lock] = [:]
        var transactions = 0
        var random: SeededGenerator
        /// Committed writes by document and virtual second.
        var writes: [DocumentPath: [Int64: Int]] = [:]
        var aborts = 0
    }

    let scheduler: SimulationScheduler
    let latency: Latency
    let lockTimeout: Duration
    private let state: Mutex<State>

    package init(scheduler: SimulationScheduler, latency: Latency, lockTimeout: Duration = .seconds(2), seed: UInt64) {
        self.scheduler = scheduler
        self.latency = latency
        self.lockTimeout = lockTimeout
        state = Mutex(State(random: SeededGenerator(seed: seed)))
    }

    package var aborts: Int { state.withLock { $0.aborts } }

    /// Committed writes on `path` in each of `seconds` seconds from `start`.
    package func writeSeries(_ path: DocumentPath, from start: Timestamp, seconds: Int) -> [Int] {
        let first = start.microsecondsSinceEpoch / 1_000_000
        let counts = state.withLock { $0.writes[path] ?? [:] }
        return (0..<Int64(seconds)).map { counts[first + $0, default: 0] }
    }

    private func roundTrip(_ median: Double) async {
        let now = scheduler.now()
        var milliseconds = state.withLock { $0.random.logNormal(median: median, sigma: latency.sigma) }
        if let spike = latency.spike, spike.from <= now, now < spike.to { milliseconds += spike.extra }
        await scheduler.sleep(.microseconds(Int64(milliseconds * 1_000)))
    }

    /// Writes a document before the simulation starts, outside virtual time.
    package func seed(_ path: DocumentPath, _ fields: [String: FieldValue]) throws {
        _ = try apply([Write(path: path, operation: .set(fields))])
        state.withLock { $0.writes[path] = nil }
    }

    package func get(_ path: DocumentPath) async throws -> DocumentSnapshot? {
        await roundTrip(latency.get)
        return snapshot(path)
    }

    /// The document as it stands, outside virtual time (for the report after a run).
    package func snapshot(_ path: DocumentPath) -> DocumentSnapshot? {
        state.withLock { state in
            state.documents[path].map { DocumentSnapshot(path: path, fields: $0.fields, createTime: $0.created, updateTime: $0.updated) }
        }
    }

    /// A write outside a transaction: after its round trip it takes the lock of each
    /// document it writes, as a transaction's commit would, for `latency.apply` (the
    /// server's own time to apply it), so blind writes queue behind a transaction that read
    /// the document and one another, but hold no lock over a round trip.
    package func commitWithResults(_ writes: [Write]) async throws -> CommitResult {
        await roundTrip(latency.commit)
        let id = state.withLock { state -> Int in
            state.transactions += 1
            return state.transactions
        }
        defer { release(id) }
        for path in Set(writes.map(\.path)) { try await lock(path, for: id) }
        await scheduler.sleep(.microseconds(Int64(latency.apply * 1_000)))
        return try apply(writes)
    }

    private func apply(_ writes: [Write]) throws -> CommitResult {
        let now = scheduler.now()
        return try state.withLock { state in
            var documents = state.documents
            var results: [[FieldValue]] = []
            for write in writes {
                let current = documents[write.path]
                if case .updateTime(let expected) = write.precondition, current?.updated != expected {
                    throw TollgateError(.failedPrecondition, "\(write.path) changed since \(expected)")
                }
                if case .exists(let exists) = write.precondition, exists != (current != nil) {
                    throw TollgateError(exists ? .notFound : .alreadyExists, "precondition failed on \(write.path)")
                }
                var fields: [String: FieldValue]
                switch write.operation {
                case .set(let new): fields = new
                case .update(let changes):
                    fields = current?.fields ?? [:]
                    for (path, value) in changes { fields.setValue(value, at: path) }
                case .delete:
                    documents[write.path] = nil
                    results.append([])
                    continue
                }
                for transform in write.transforms { transform.apply(to: &fields, at: now) }
                results.append(write.transforms.map { fields.value(at: $0.field) ?? .null })
                documents[write.path] = Document(fields: fields, created: current?.created ?? now, updated: now)
            }
            state.documents = documents
            for write in writes { state.writes[write.path, default: [:]][now.secondsSinceEpoch, default: 0] += 1 }
            return CommitResult(commitTime: now, transformResults: results)
        }
    }

    package func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        throw TollgateError(.internal, "the simulated store does not model queries")
    }

    package func runTransaction<T: Sendable>(maxAttempts: Int, _ body: @Sendable (DocumentTransaction) async throws -> T) async throws
        -> T
    {
        var backoff = 0.1
        for attempt in 1...maxAttempts {
            await roundTrip(latency.begin)
            let id = state.withLock { state -> Int in
                state.transactions += 1
                return state.transactions
            }
            let transaction = SimulatedTransaction(store: self, id: id)
            do {
                let result = try await body(transaction)
                await roundTrip(latency.commit)
                _ = try apply(transaction.buffered)
                release(id)
                return result
            } catch let error as TollgateError where error.code == .aborted && attempt < maxAttempts {
                release(id)
                state.withLock { $0.aborts += 1 }
                await scheduler.sleep(.microseconds(Int64(backoff * 1_000_000)))
                backoff = min(backoff * 1.5, 2)
            } catch {
                release(id)
                if (error as? TollgateError)?.code == .aborted { state.withLock { $0.aborts += 1 } }
                throw error
            }
        }
        throw TollgateError(.aborted, "too much contention")
    }

    /// Takes the document's lock for `transaction`, waiting in order behind its holder.
    /// - Throws: `ABORTED` after waiting `lockTimeout`.
    func lock(_ path: DocumentPath, for transaction: Int) async throws {
        let granted: Bool = await withCheckedContinuation { continuation in
            let resumed = Mutex(false)
            let resume: @Sendable (Bool) -> Void = { granted in
                let first = resumed.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: granted) }
            }
            let immediate = state.withLock { state -> Bool in
                guard var lock = state.locks[path] else {
                    state.locks[path] = Lock(holder: transaction)
                    return true
                }
                if lock.holder == transaction { return true }
                lock.waiters.append((transaction, resume))
                state.locks[path] = lock
                return false
            }
            if immediate {
                resume(true)
                return
            }
            scheduler.at(scheduler.now().adding(microseconds: lockTimeout.components.seconds * 1_000_000)) { [self] in
                let waiting = state.withLock { state -> Bool in
                    guard var lock = state.locks[path], let index = lock.waiters.firstIndex(where: { $0.transaction == transaction })
                    else { return false }
                    lock.waiters.remove(at: index)
                    state.locks[path] = lock
                    return true
                }
                if waiting { resume(false) }
            }
        }
        scheduler.noteActivity()
        guard granted else { throw TollgateError(.aborted, "waited \(lockTimeout) for the lock on \(path)") }
    }

    /// Releases every lock `transaction` holds; each passes to its first waiter.
    private func release(_ transaction: Int) {
        let next = state.withLock { state -> [@Sendable (Bool) -> Void] in
            var resumes: [@Sendable (Bool) -> Void] = []
            for (path, var lock) in state.locks where lock.holder == transaction {
                if lock.waiters.isEmpty {
                    state.locks[path] = nil
                } else {
                    let waiter = lock.waiters.removeFirst()
                    lock.holder = waiter.transaction
                    state.locks[path] = lock
                    resumes.append(waiter.resume)
                }
            }
            return resumes
        }
        for resume in next { resume(true) }
        scheduler.noteActivity()
    }

    fileprivate func read(_ path: DocumentPath, in transaction: Int) async throws -> DocumentSnapshot? {
        try await lock(path, for: transaction)
        await roundTrip(latency.get)
        return snapshot(path)
    }
}

/// One transaction of the model: reads lock, writes buffer until commit.
final class SimulatedTransaction: DocumentTransaction {
    let store: SimulatedFirestore
    let id: Int
    private let writes = Mutex<[Write]>([])

    init(store: SimulatedFirestore, id: Int) {
        self.store = store
        self.id = id
    }

    var buffered: [Write] { writes.withLock { $0 } }

    func get(_ path: DocumentPath) async throws -> DocumentSnapshot? { try await store.read(path, in: id) }

    func query(_ query: DocumentQuery) async throws -> [DocumentSnapshot] {
        throw TollgateError(.internal, "the simulated store does not model queries")
    }

    func write(_ write: Write) throws { writes.withLock { $0.append(write) } }
}

extension SeededGenerator {
    /// A log-normal draw with this median.
    mutating func logNormal(median: Double, sigma: Double) -> Double {
        // Box-Muller from two uniforms in (0, 1].
        let u1 = Double(next() >> 11 | 1) / Double(1 << 53)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return median * exp(sigma * normal)
    }

    /// An exponential draw with this mean (gaps between Poisson arrivals).
    mutating func exponential(mean: Double) -> Double {
        let u = Double(next() >> 11 | 1) / Double(1 << 53)
        return -mean * log(u)
    }
}
