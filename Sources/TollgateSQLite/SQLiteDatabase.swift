import Foundation
import GRDB
import TollgateModel

/// The one SQLite file every fake shares, in WAL mode so several function processes and
/// the emulator can use it at once. Opened from `sqlite:///abs/path.db`,
/// `sqlite://relative/path.db` or `sqlite::memory:`.
public final class SQLiteDatabase: Sendable {
    let pool: DatabasePool?
    let queue: DatabaseQueue?
    public let path: String
    /// The clock that stamps commits, publishes and writes (virtual in the emulator).
    public let clock: any TollgateModel.Clock

    public init(path: String, clock: any TollgateModel.Clock = SystemClock()) throws {
        self.path = path
        self.clock = clock
        var configuration = Configuration()
        // Another process may hold the write lock; wait for it as Firestore would queue.
        configuration.busyMode = .timeout(10)
        configuration.journalMode = .wal
        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the
        // process loses nothing, a power cut may lose the last commits (never corrupts).
        // Right for a local fake; Firestore is the durable store.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            if path == ":memory:" {
                queue = try DatabaseQueue(configuration: configuration)
                pool = nil
            } else {
                let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                pool = try DatabasePool(path: path, configuration: configuration)
                queue = nil
            }
            try Self.migrator.migrate(writer)
        } catch let error as DatabaseError {
            throw TollgateError(.unavailable, "cannot open SQLite state \(path): \(error.message ?? "\(error)")")
        }
    }

    /// Opens the database a `sqlite:` URL names.
    /// - Throws: `INVALID_ARGUMENT` for a URL that is not `sqlite:`.
    public convenience init(url: String, clock: any TollgateModel.Clock = SystemClock()) throws {
        try self.init(path: try Self.path(fromURL: url), clock: clock)
    }

    public static func path(fromURL url: String) throws -> String {
        guard url.hasPrefix("sqlite:") else {
            throw TollgateError(.invalidArgument, "not a sqlite URL: \(url)")
        }
        var rest = String(url.dropFirst("sqlite:".count))
        if rest == ":memory:" { return rest }
        if rest.hasPrefix("//") { rest.removeFirst(2) }
        guard !rest.isEmpty else { throw TollgateError(.invalidArgument, "sqlite URL without a path: \(url)") }
        return rest
    }

    var writer: any DatabaseWriter { pool ?? queue! }
    var reader: any DatabaseReader { pool ?? queue! }

    /// Runs `body` in an immediate write transaction: immediate so that two processes
    /// never both read and then both try to upgrade to the write lock.
    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await writer.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    func read<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
        do {
            return try await reader.read(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    static func translate(_ error: DatabaseError) -> TollgateError {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: TollgateError(.unavailable, "SQLite state is busy: \(error.message ?? "")")
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN: TollgateError(.unavailable, "SQLite I/O: \(error.message ?? "")")
        default: TollgateError(.internal, "SQLite: \(error.message ?? "\(error)")")
        }
    }

    /// The next commit time: the clock's now, but strictly after the previous commit, as
    /// Firestore's update times are (two commits never share one).
    func nextCommitTime(_ db: Database) throws -> Timestamp {
        let last = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT last_time FROM commit_clock WHERE id = 1")) ?? Int64.min
        let next = max(clock.now().microsecondsSinceEpoch, last + 1)
        try db.cachedStatement(
            sql: "INSERT INTO commit_clock (id, last_time) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET last_time = excluded.last_time"
        ).execute(arguments: [next])
        return Timestamp(microsecondsSinceEpoch: next)
    }

    // Forward-only migrations, one transaction each, run before anything listens.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE documents (
                      collection TEXT NOT NULL, id TEXT NOT NULL, fields TEXT NOT NULL,
                      create_time INTEGER NOT NULL, update_time INTEGER NOT NULL,
                      PRIMARY KEY (collection, id)) WITHOUT ROWID;
                    CREATE TABLE commit_clock (id INTEGER PRIMARY KEY CHECK (id = 1), last_time INTEGER NOT NULL);
                    CREATE TABLE topics (name TEXT PRIMARY KEY) WITHOUT ROWID;
                    CREATE TABLE messages (
                      seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL REFERENCES topics(name),
                      data BLOB NOT NULL, attributes TEXT NOT NULL, ordering_key TEXT, publish_time INTEGER NOT NULL);
                    CREATE TABLE blobs (
                      name TEXT PRIMARY KEY, data BLOB NOT NULL, content_type TEXT NOT NULL, generation INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE tasks (
                      queue TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL,
                      schedule_time INTEGER NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (queue, name)) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2") { db in
            // Objects as chunks (streamed uploads and ranged reads); resumable sessions;
            // Cloud Tasks dispatch state; the Stripe fake's meter events and idempotency.
            try db.execute(
                sql: """
                    CREATE TABLE blob_chunks (name TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, offset));
                    INSERT INTO blob_chunks (name, offset, data) SELECT name, 0, data FROM blobs;
                    ALTER TABLE blobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
                    UPDATE blobs SET size = length(data);
                    ALTER TABLE blobs DROP COLUMN data;
                    CREATE TABLE blob_uploads (
                      id TEXT PRIMARY KEY, name TEXT NOT NULL, content_type TEXT NOT NULL, if_generation_match INTEGER,
                      started INTEGER NOT NULL, size INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0);
                    CREATE TABLE blob_upload_chunks (id TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, offset));
                    ALTER TABLE tasks ADD COLUMN state TEXT NOT NULL DEFAULT 'queued';
                    ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE tasks ADD COLUMN responses INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE tasks ADD COLUMN next_attempt INTEGER;
                    ALTER TABLE tasks ADD COLUMN last_status INTEGER;
                    CREATE TABLE stripe_meter_events (
                      identifier TEXT PRIMARY KEY, event_name TEXT NOT NULL, customer TEXT NOT NULL, value TEXT NOT NULL,
                      timestamp INTEGER NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE stripe_idempotency (
                      key TEXT PRIMARY KEY, request TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    """)
            for field in SQLiteDocumentStore.indexedTimestampFields {
                try db.execute(
                    sql: "CREATE INDEX documents_by_\(field) ON documents (collection, \(SQLiteDocumentStore.sortableTime(field)), id)")
            }
        }
        migrator.registerMigration("v3") { db in
            // One table of data chunks, keyed by the write or upload that made them: an
            // upload finishes by pointing its object at its chunks, with no copy.
            try db.execute(
                sql: """
                    CREATE TABLE blob_data (key TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (key, offset));
                    INSERT INTO blob_data (key, offset, data) SELECT 'object:' || name, offset, data FROM blob_chunks;
                    INSERT INTO blob_data (key, offset, data) SELECT id, offset, data FROM blob_upload_chunks;
                    DROP TABLE blob_chunks;
                    DROP TABLE blob_upload_chunks;
                    ALTER TABLE blobs ADD COLUMN data_key TEXT NOT NULL DEFAULT '';
                    UPDATE blobs SET data_key = 'object:' || name;
                    """)
        }
        migrator.registerMigration("v4") { db in
            // The local cloud's push subscriptions and each message's delivery state per
            // subscription; when each task was first attempted (for maxRetryDuration).
            try db.execute(
                sql: """
                    CREATE TABLE subscriptions (
                      name TEXT PRIMARY KEY, topic TEXT NOT NULL, endpoint TEXT NOT NULL, last_seq INTEGER NOT NULL,
                      ack_deadline INTEGER NOT NULL, max_delivery_attempts INTEGER, dead_letter_topic TEXT,
                      min_backoff INTEGER NOT NULL, max_backoff INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE push_deliveries (
                      subscription TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                      next_attempt INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', last_status INTEGER,
                      PRIMARY KEY (subscription, seq)) WITHOUT ROWID;
                    CREATE INDEX push_deliveries_due ON push_deliveries (state, next_attempt);
                    ALTER TABLE tasks ADD COLUMN first_attempt INTEGER;
                    """)
        }
        migrator.registerMigration("v5") { db in
            // Document keys escape U+0000 and U+0001 (SQLiteKey): an id that held U+0001
            // before is rewritten; none could hold U+0000, which the old binding cut off.
            try db.execute(
                sql: """
                    UPDATE documents SET collection = replace(collection, char(1), char(1, 2)), id = replace(id, char(1), char(1, 2))
                    WHERE instr(collection, char(1)) > 0 OR instr(id, char(1)) > 0;
                    """)
        }
        migrator.registerMigration("v6") { db in
            // Settings of the local cloud that every process on the file reads: where the
            // blob fake's signed links point (`serve` serves them).
            try db.execute(sql: "CREATE TABLE local_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;")
        }
        return migrator
    }()
}
