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
