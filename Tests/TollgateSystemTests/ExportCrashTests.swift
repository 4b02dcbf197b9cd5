import Foundation
import GRDB
import Testing
import TollgateExport
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// A real `tollgate export` process killed with SIGKILL half-way, then run again, leaves
/// exactly what an uninterrupted export of the same ledger leaves.
@Suite struct ExportCrashTests {
    static let day = UTCDay("2026-01-01")!

    /// Every object under the export prefix, with its SHA-256.
    func objects(_ database: SQLiteDatabase) async throws -> [String: String] {
        let blobs = SQLiteBlobStore(database)
        var found: [String: String] = [:]
        var token: String?
        repeat {
            let page = try await blobs.list(prefix: "usage/", pageSize: 1_000, pageToken: token)
            for name in page.names { found[name] = try await BlobDigest.sha256(of: name, in: blobs) }
            token = page.nextPageToken
        } while token != nil
        return found
    }

    func environment(_ database: SQLiteDatabase) -> [String: String] {
        ["TOLLGATE_STORE": "sqlite://\(database.path)", "TOLLGATE_EXPORT_PART_RECORDS": "300", "PATH": "/usr/bin:/bin"]
    }

    @Test func exportKilledWithSIGKILL_andRerun_equalsAnUninterruptedExport() async throws {
        let killed = try temporaryDatabase()
        let clean = try temporaryDatabase()
        for database in [killed, clean] { try await seedLedger(SQLiteDocumentStore(database), day: Self.day, count: 12_000, late: 10) }

        let process = Process()
        process.executableURL = productURL("tollgate")
        process.arguments = ["export", "run", "--date", Self.day.description]
        process.environment = environment(killed)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill it once two parts are written, before the manifest. The watch runs on its own
        // thread with a blocking read: a poll on the cooperative pool starved behind the
        // parallel suite's tasks long enough for the export to finish first.
        let watched = try await KillWhenPartsWritten.watch(process, database: killed.path, parts: 2)
        #expect(watched, "the export finished before it could be killed; give it more records")
        while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        #expect(process.terminationReason == .uncaughtSignal, "the export finished before the kill reached it")
        let partial = try await objects(killed)
        #expect(!partial.keys.contains { $0.hasSuffix("manifest.json") })

        let (rerun, _, rerunErrors) = try await runTollgate(
            ["export", "run", "--date", Self.day.description], environment: environment(killed))
        #expect(rerun == 0, "\(rerunErrors)")
        let (first, _, errors) = try await runTollgate(["export", "run", "--date", Self.day.description], environment: environment(clean))
        #expect(first == 0, "\(errors)")

        let after = try await objects(killed)
        let reference = try await objects(clean)
        #expect(after == reference)
        let expectedCount = 44  // 40 usage parts, 1 late part, manifest, signature, key
        #expect(after.count == expectedCount)
        for (name, digest) in partial { #expect(after[name] == digest, "\(name) was rewritten differently") }
        let state = { (database: SQLiteDatabase) in
            try await SQLiteDocumentStore(database).get(try DocumentPath(collection: ExportState.collection, id: Self.day.description))?
                .fields["manifestSHA256"]
        }
        let (killedManifest, cleanManifest) = (try await state(killed), try await state(clean))
        #expect(killedManifest != nil && killedManifest == cleanManifest)
        let tasks = { (database: SQLiteDatabase) -> [String] in try await SQLiteTaskQueue(database).tasks().map { $0.task.name ?? "" } }
        let (killedTasks, cleanTasks) = (try await tasks(killed), try await tasks(clean))
        #expect(killedTasks == cleanTasks)
        #expect(killedTasks.count == 3)
    }
}

/// Watches an export's database from a dedicated thread and sends SIGKILL the moment it
/// holds `parts` usage objects.
enum KillWhenPartsWritten {
    /// True when the process was killed while running; false when it finished first.
    static func watch(_ process: Process, database path: String, parts: Int) async throws -> Bool {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                let deadline = Date().addingTimeInterval(120)
                while process.isRunning, Date() < deadline {
                    let written =
                        (try? queue.read { db in
                            try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs WHERE name LIKE 'usage/%'")
                        }) ?? 0
                    if written >= parts {
                        kill(process.processIdentifier, SIGKILL)
                        continuation.resume(returning: true)
                        return
                    }
                    usleep(1_000)
                }
                continuation.resume(returning: false)
            }
            thread.start()
        }
    }
}
