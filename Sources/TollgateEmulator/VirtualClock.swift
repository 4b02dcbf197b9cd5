import Synchronization
import TollgateModel

/// A clock that moves only when told: scenarios fast-forward a month in milliseconds.
public final class VirtualClock: Clock {
    private let current: Mutex<Timestamp>

    public init(start: Timestamp) { current = Mutex(start) }

    public func now() -> Timestamp { current.withLock { $0 } }

    public func advance(seconds: Int64) {
        current.withLock { $0 = $0.adding(seconds: seconds) }
    }

    /// Moves to `time` if it is later; a clock never goes back.
    public func move(to time: Timestamp) {
        current.withLock { $0 = max($0, time) }
    }
}

/// A small deterministic generator (SplitMix64), so `--shuffle SEED` reorders the same
/// way on every machine and every run.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
