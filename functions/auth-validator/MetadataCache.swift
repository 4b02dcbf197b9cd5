import Synchronization
import TollgateModel

/// An in-process cache with a time to live, so the hot path does not read the store for
/// metadata that has not changed. Bounded: past `capacity` entries it starts afresh,
/// which a flood of made-up keys cannot turn into unbounded memory.
final class MetadataCache<Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var expires: Timestamp
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let ttl: Int64
    private let capacity: Int
    private let clock: any TollgateModel.Clock

    init(ttlSeconds: Int64, capacity: Int = 100_000, clock: any TollgateModel.Clock) {
        self.ttl = ttlSeconds
        self.capacity = capacity
        self.clock = clock
    }

    /// The cached value, or what `load` returns (then cached).
    func value(_ key: String, load: () async throws -> Value) async throws -> Value {
        let now = clock.now()
        if let hit = entries.withLock({ $0[key] }), now < hit.expires { return hit.value }
        let value = try await load()
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = Entry(value: value, expires: now.adding(seconds: ttl))
        }
        return value
    }

    func store(_ key: String, _ value: Value) {
        let expires = clock.now().adding(seconds: ttl)
        entries.withLock { $0[key] = Entry(value: value, expires: expires) }
    }

    func remove(_ key: String) { _ = entries.withLock { $0.removeValue(forKey: key) } }
}
