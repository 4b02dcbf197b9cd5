/// Every port a function may use, as one value: what a function is built over. Drivers
/// open them from URLs (TollgateDrivers' `Ports.open`); the emulator puts them all on one
/// SQLite file.
public struct Ports: Sendable {
    public var store: any DocumentStore
    public var blobs: any BlobStore
    public var publisher: any Publisher
    public var tasks: any TaskQueue
    public var clock: any Clock
    /// Where secrets' randomness comes from (new API keys): the system's CSPRNG, always,
    /// in production; a seeded source in a replay, so that it is repeatable.
    public var entropy: any Entropy

    public init(
        store: any DocumentStore, blobs: any BlobStore, publisher: any Publisher, tasks: any TaskQueue, clock: any Clock,
        entropy: any Entropy = SystemEntropy()
    ) {
        self.store = store
        self.blobs = blobs
        self.publisher = publisher
        self.tasks = tasks
        self.clock = clock
        self.entropy = entropy
    }
}

/// A source of random 64-bit words, as the clock is a source of time.
public protocol Entropy: Sendable {
    func next() -> UInt64
}

/// The system's cryptographically secure generator.
public struct SystemEntropy: Entropy {
    public init() {}
    public func next() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }
}

/// An ``Entropy`` as a `RandomNumberGenerator`, for the standard library's random APIs.
public struct EntropyGenerator: RandomNumberGenerator {
    let source: any Entropy
    public init(_ source: any Entropy) { self.source = source }
    public mutating func next() -> UInt64 { source.next() }
}
