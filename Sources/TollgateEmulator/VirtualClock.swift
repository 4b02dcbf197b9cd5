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
