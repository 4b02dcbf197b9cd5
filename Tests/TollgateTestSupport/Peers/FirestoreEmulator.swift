import Foundation
import Synchronization
import TollgateModel

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Google's own Firestore emulator (Debian's `google-cloud-cli-firestore-emulator`, Java 17)
/// on a loopback port, shared by the tests that hold it: the first ``acquire()`` starts
/// it, the last release stops it (SIGKILL to the JVM itself, not the launcher script,
/// whose child would outlive it). Each holder works in a project of its own, so holders
/// never see each other's documents.
package enum FirestoreEmulator {
    package static let jar = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    package static let java = Peer.firstExecutable(["/usr/bin/java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"])
    package static var isInstalled: Bool { java != nil && FileManager.default.fileExists(atPath: jar) }

    /// One holder's view: the emulator's `host:port` (what `FIRESTORE_EMULATOR_HOST` takes)
    /// and a project no other holder uses.
    package struct Lease: Sendable {
        package let host: String
        package let project: String
        package let release: @Sendable () -> Void
    }

    private struct Running {
        var process: Process
        var host: String
        var holders: Int
    }

    private static let running = Mutex<Running?>(nil)
    /// Starts are serialised: two holders arriving together share one emulator.
    private static let starting = AsyncGate()

    package static func acquire() async throws -> Lease {
        try await starting.run {
            if running.withLock({ running in
                guard running != nil else { return false }
                running!.holders += 1
                return true
            }) {
                return
            }
            let (process, host) = try await start()
            running.withLock { $0 = Running(process: process, host: host, holders: 1) }
        }
        let host = running.withLock { $0!.host }
        let project = "tollgate-test-\(UUID().uuidString.prefix(8).lowercased())"
        let released = Mutex(false)
        return Lease(host: host, project: project) {
            guard
                released.withLock({ done in
                    defer { done = true }
                    return !done
                })
            else { return }
            let last = running.withLock { running -> Process? in
                running!.holders -= 1
                guard running!.holders == 0 else { return nil }
                defer { running = nil }
                return running!.process
            }
            if let last {
                kill(last.processIdentifier, SIGKILL)
                last.waitUntilExit()
            }
        }
    }

    private static func start() async throws -> (Process, String) {
        guard let java, isInstalled else { throw Peer.firestoreEmulator.missing }
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: java)
            process.arguments = [
                "-Duser.language=en", "-Xmx512m", "-cp", jar, "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                "--host=127.0.0.1", "--port=\(port)",
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<300 where process.isRunning {
                // The emulator answers `GET /` with "Ok" once it serves.
                if let (status, body) = try? await get(URL(string: "http://127.0.0.1:\(port)/")!), status == 200,
                    body.starts(with: Array("Ok".utf8))
                {
                    return (process, "127.0.0.1:\(port)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        throw TollgateError(.unavailable, "the Firestore emulator did not start")
    }
}

/// Runs one body at a time, in arrival order.
package actor AsyncGate {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    package init() {}

    package func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}
