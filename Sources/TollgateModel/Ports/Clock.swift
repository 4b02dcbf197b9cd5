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
