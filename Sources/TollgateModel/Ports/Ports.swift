/// Every port a function may use, as one value: what a function is built over. Drivers
/// open them from URLs (TollgateDrivers' `Ports.open`); the emulator puts them all on one
/// SQLite file.
public struct Ports: Sendable {
    public var store: any DocumentStore
    public var blobs: any BlobStore
    public var publisher: any Publisher
    public var tasks: any TaskQueue
    public var clock: any Clock

    public init(store: any DocumentStore, blobs: any BlobStore, publisher: any Publisher, tasks: any TaskQueue, clock: any Clock) {
        self.store = store
        self.blobs = blobs
        self.publisher = publisher
        self.tasks = tasks
        self.clock = clock
    }
}
