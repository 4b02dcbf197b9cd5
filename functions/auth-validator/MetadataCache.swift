import Synchronization
import TollgateModel

/// An in-process cache with a time to live, so the hot path does not read the store for
/// metadata that has not changed. Keys compare byte for byte (``ExactID``), as the store
/// compares ids.
///
/// Bounded: found values and misses (`isMiss`: an unknown key, a user without an
/// account) live in two maps of `capacity` entries each. A full map first drops its
/// expired entries, then the half that expires soonest: a flood of made-up keys only ever
/// evicts other misses, never the entries of real callers, and never everything at once.
final class MetadataCache<Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var expires: Timestamp
    }

    private struct Maps {
        var found: [ExactID: Entry] = [:]
        var missed: [ExactID: Entry] = [:]
    }

    private let maps = Mutex(Maps())
    private let ttl: Int64
    private let capacity: Int
    private let clock: any TollgateModel.Clock
    private let isMiss: @Sendable (Value) -> Bool

    init(
        ttlSeconds: Int64, capacity: Int = 100_000, clock: any TollgateModel.Clock,
        isMiss: @escaping @Sendable (Value) -> Bool = { _ in false }
    ) {
        self.ttl = ttlSeconds
        self.capacity = max(capacity, 2)
        self.clock = clock
        self.isMiss = isMiss
    }

    /// The cached value, or what `load` returns (then cached).
    func value(_ key: String, load: () async throws -> Value) async throws -> Value {
        let now = clock.now()
        let id = ExactID(key)
        if let hit = maps.withLock({ $0.found[id] ?? $0.missed[id] }), now < hit.expires { return hit.value }
        let value = try await load()
        put(id, value, now: now)
        return value
    }

    func store(_ key: String, _ value: Value) { put(ExactID(key), value, now: clock.now()) }

    func remove(_ key: String) {
        let id = ExactID(key)
        maps.withLock { maps in
            maps.found[id] = nil
            maps.missed[id] = nil
        }
    }

    /// How many entries each map holds (for tests of the bound).
    var counts: (found: Int, missed: Int) { maps.withLock { ($0.found.count, $0.missed.count) } }

    private func put(_ id: ExactID, _ value: Value, now: Timestamp) {
        let entry = Entry(value: value, expires: now.adding(seconds: ttl))
        let miss = isMiss(value)
        maps.withLock { maps in
            if miss {
                maps.found[id] = nil
                Self.insert(entry, at: id, into: &maps.missed, capacity: capacity, now: now)
            } else {
                maps.missed[id] = nil
                Self.insert(entry, at: id, into: &maps.found, capacity: capacity, now: now)
            }
        }
    }

    private static func insert(_ entry: Entry, at id: ExactID, into map: inout [ExactID: Entry], capacity: Int, now: Timestamp) {
        if map[id] == nil, map.count >= capacity {
            map = map.filter { now < $0.value.expires }
            if map.count >= capacity {
                // Keep the half that lives longest: O(n log n) once per capacity/2 inserts.
                let keep = map.sorted { $0.value.expires > $1.value.expires }.prefix(capacity / 2)
                map = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
        map[id] = entry
    }
}
