import Foundation

/// The time, as a port: the wall clock in production, a virtual clock in scenarios so a
/// month of billing replays in milliseconds.
public protocol Clock: Sendable {
    func now() -> Timestamp
}

/// The system's wall clock.
public struct SystemClock: Clock {
    public init() {}
    public func now() -> Timestamp { Timestamp(Date()) }
}

/// The wall clock moved by a fixed offset: how the local cloud runs real executables at
/// another time (`tollgate serve --processes --start`), so that yesterday's usage can be
/// recorded now and exported once its day is over.
public struct ShiftedClock: Clock {
    public let offsetMicroseconds: Int64

    public init(offsetSeconds: Int64) { offsetMicroseconds = offsetSeconds * 1_000_000 }

    public func now() -> Timestamp {
        Timestamp(microsecondsSinceEpoch: SystemClock().now().microsecondsSinceEpoch + offsetMicroseconds)
    }
}
