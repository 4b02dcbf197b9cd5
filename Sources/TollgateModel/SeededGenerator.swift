import Synchronization

/// A small deterministic generator (SplitMix64), so a seed gives the same sequence on
/// every machine and every run: `--shuffle SEED` in replays, the quota simulator.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
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

/// A seeded ``Entropy`` for replays: the same words in the same order every run. Never
/// for production secrets.
public final class SeededEntropy: Entropy {
    private let generator: Mutex<SeededGenerator>
    public init(seed: UInt64) { generator = Mutex(SeededGenerator(seed: seed)) }
    public func next() -> UInt64 { generator.withLock { $0.next() } }
}
