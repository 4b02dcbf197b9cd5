import Foundation
import GRDB
import TollgateModel

/// The `TaskQueue` fake: tasks kept per queue; a name already used is refused with
/// `ALREADY_EXISTS`, as Cloud Tasks does, which is what makes named enqueues idempotent.
public struct SQLiteTaskQueue: TaskQueue {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    public func enqueue(_ task: HTTPTask, queue: String) async throws {
        try task.validate()
        let headers = String(decoding: try JSONEncoder().encode(task.headers), as: UTF8.self)
        try await database.write { db in
            let now = self.database.clock.now()
            // An unnamed task gets a server-chosen id, as in Cloud Tasks.
            var name = task.name ?? ""
            if task.name == nil { name = "auto-\(try self.database.nextCommitTime(db).microsecondsSinceEpoch)" }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM tasks WHERE queue = ? AND name = ?", arguments: [queue, name]) == true {
                throw TollgateError(.alreadyExists, "task \(name) already exists in \(queue)")
            }
            try db.execute(
                sql: "INSERT INTO tasks (queue, name, url, body, headers, schedule_time, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    queue, name, task.url, Data(task.body), headers, (task.scheduleTime ?? now).microsecondsSinceEpoch,
                    now.microsecondsSinceEpoch,
                ])
        }
    }

    /// Every task of every queue, by queue then name.
    public func tasks() async throws -> [(queue: String, task: HTTPTask)] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM tasks ORDER BY queue, name").map { row in
                let headers = try JSONDecoder().decode([String: String].self, from: Data((row["headers"] as String).utf8))
                return (
                    row["queue"],
                    HTTPTask(
                        name: row["name"], url: row["url"], body: [UInt8](row["body"] as Data), headers: headers,
                        scheduleTime: Timestamp(microsecondsSinceEpoch: row["schedule_time"]))
                )
            }
        }
    }
}

/// Dispatch state, for the emulator's Cloud Tasks: which tasks are due, and each
/// attempt's outcome.
extension SQLiteTaskQueue {
    public struct QueuedTask: Sendable {
        public var queue: String
        public var task: HTTPTask
        /// Attempts that were retried (0 before the first retry), responses received.
        public var retries: Int
        public var responses: Int
        public var lastStatus: Int?
        /// When the first attempt was made (nil before it).
        public var firstAttempt: Timestamp?
    }

    /// Tasks still queued whose time has come, oldest first.
    public func due(at now: Timestamp) async throws -> [QueuedTask] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM tasks WHERE state = 'queued' AND coalesce(next_attempt, schedule_time) <= ?
                    ORDER BY coalesce(next_attempt, schedule_time), queue, name
                    """, arguments: [now.microsecondsSinceEpoch]
            ).map { row in
                let headers = try JSONDecoder().decode([String: String].self, from: Data((row["headers"] as String).utf8))
                return QueuedTask(
                    queue: row["queue"],
                    task: HTTPTask(
                        name: row["name"], url: row["url"], body: [UInt8](row["body"] as Data), headers: headers,
                        scheduleTime: Timestamp(microsecondsSinceEpoch: row["schedule_time"])), retries: row["retries"],
                    responses: row["responses"], lastStatus: row["last_status"],
                    firstAttempt: (row["first_attempt"] as Int64?).map(Timestamp.init(microsecondsSinceEpoch:)))
            }
        }
    }

    /// Records an attempt's answer: a 2xx completes the task; otherwise it waits until
    /// `retryAt`, or fails for good when there is none.
    public func recordAttempt(queue: String, name: String, status: Int, retryAt: Timestamp?, at now: Timestamp? = nil) async throws {
        let state = (200..<300).contains(status) ? "succeeded" : (retryAt == nil ? "failed" : "queued")
        let attempted = (now ?? database.clock.now()).microsecondsSinceEpoch
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE tasks SET state = ?, responses = responses + 1, last_status = ?, next_attempt = ?,
                    retries = retries + (CASE WHEN ? = 'queued' THEN 1 ELSE 0 END), first_attempt = coalesce(first_attempt, ?)
                    WHERE queue = ? AND name = ?
                    """, arguments: [state, status, retryAt?.microsecondsSinceEpoch, state, attempted, queue, name])
        }
    }
}
