import Foundation
import Synchronization
import TollgateModel

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One of Google's own emulators (Debian's `google-cloud-cli-*-emulator` packages, Java 17)
/// on a loopback port, shared by the tests that hold it: the first ``acquire()`` starts
/// it, the last release stops it (SIGKILL to the JVM itself, not the launcher script,
/// whose child would outlive it). Each holder works in a project of its own, so holders
/// never see each other's documents, topics or subscriptions.
package final class GoogleEmulator: Sendable {
    /// Firestore in native mode (`FIRESTORE_EMULATOR_HOST`).
    package static let firestore = GoogleEmulator(
        peer: .firestoreEmulator, jar: "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar",
        mainClass: "com.google.cloud.datastore.emulator.firestore.CloudFirestore")
    /// Pub/Sub (`PUBSUB_EMULATOR_HOST`). It has no dead-letter or retry policy and does
    /// not sign its pushes.
    package static let pubSub = GoogleEmulator(
        peer: .pubSubEmulator,
        jar: newestJar(in: "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib", named: "cloud-pubsub-emulator-"), mainClass: nil)

    package static let java = Peer.firstExecutable(["/usr/bin/java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"])

    let peer: Peer
    let jar: String?
    /// The class to run from the jar; nil runs the jar's own main.
    let mainClass: String?

    init(peer: Peer, jar: String?, mainClass: String?) {
        self.peer = peer
        self.jar = jar
        self.mainClass = mainClass
    }

    package var isInstalled: Bool { Self.java != nil && jar.map { FileManager.default.fileExists(atPath: $0) } == true }

    /// The package's jar carries its version in its name.
    static func newestJar(in folder: String, named prefix: String) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".jar") }.sorted().last.map { folder + "/" + $0 }
    }

    /// One holder's view: the emulator's `host:port` (what `*_EMULATOR_HOST` takes) and a
    /// project no other holder uses.
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

    private let running = Mutex<Running?>(nil)
    /// Starts are serialised: two holders arriving together share one emulator.
    private let starting = AsyncGate()

    package func acquire() async throws -> Lease {
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
        return Lease(host: host, project: project) { [self] in
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

    private func start() async throws -> (Process, String) {
        guard let java = Self.java, let jar, isInstalled else { throw peer.missing }
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: java)
            let program = mainClass.map { ["-cp", jar, $0] } ?? ["-jar", jar]
            // No perf-data file in /tmp/hsperfdata_<user>: a JVM killed at the end of the
            // suite would leave it behind.
            process.arguments = ["-Duser.language=en", "-Xmx512m", "-XX:-UsePerfData"] + program + ["--host=127.0.0.1", "--port=\(port)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<300 where process.isRunning {
                // Both emulators answer `GET /` with "Ok" once they serve.
                if isListening(pid: process.processIdentifier, port: port),
                    let (status, body) = try? await get(URL(string: "http://127.0.0.1:\(port)/")!), status == 200,
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
        throw TollgateError(.unavailable, "\(peer.rawValue) did not start")
    }
}

/// A topic on Google's Pub/Sub emulator with a pull subscription made before anything is
/// published, so that everything published to it can be read back.
package struct PubSubEmulatorInbox: Sendable {
    let base: String
    let subscription: String

    package init(_ lease: GoogleEmulator.Lease, topic: String) async throws {
        base = "http://\(lease.host)/v1/projects/\(lease.project)"
        subscription = "\(topic)-inbox"
        try await Self.expectOK(send("PUT", URL(string: "\(base)/topics/\(topic)")!))
        let body = JSONValue.object(["topic": .string("projects/\(lease.project)/topics/\(topic)")]).rendered()
        try await Self.expectOK(
            send(
                "PUT", URL(string: "\(base)/subscriptions/\(subscription)")!, body: Data(body.utf8),
                headers: ["Content-Type": "application/json"]))
    }

    static func expectOK(_ answer: (Int, Data)) throws {
        guard answer.0 == 200 else { throw TollgateError(.internal, "emulator: \(answer.0) \(String(decoding: answer.1, as: UTF8.self))") }
    }

    /// Every message not yet pulled, in publish order (the emulator numbers its ids).
    package func pullAll() async throws -> [OutgoingMessage] {
        var messages: [(id: Int, message: OutgoingMessage)] = []
        while true {
            // Without returnImmediately an empty pull waits 90 s for a message.
            let request = Data(#"{"maxMessages":1000,"returnImmediately":true}"#.utf8)
            let answer = try await send(
                "POST", URL(string: "\(base)/subscriptions/\(subscription):pull")!, body: request,
                headers: ["Content-Type": "application/json"])
            try Self.expectOK(answer)
            let received = try JSONValue.parse(answer.1)["receivedMessages"]?.arrayValue ?? []
            if received.isEmpty { break }
            var acks: [JSONValue] = []
            for item in received {
                guard let message = item["message"], let id = message["messageId"]?.stringValue.flatMap({ Int($0) }),
                    let data = Data(base64Encoded: message["data"]?.stringValue ?? ""), let ackId = item["ackId"]
                else { throw TollgateError(.internal, "emulator: unexpected message \(item.rendered())") }
                let attributes = (message["attributes"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
                let orderingKey = message["orderingKey"]?.stringValue
                messages.append(
                    (
                        id,
                        OutgoingMessage(
                            data: Array(data), attributes: attributes, orderingKey: orderingKey?.isEmpty == false ? orderingKey : nil)
                    ))
                acks.append(ackId)
            }
            let acknowledge = JSONValue.object(["ackIds": .array(acks)]).rendered()
            try await Self.expectOK(
                send(
                    "POST", URL(string: "\(base)/subscriptions/\(subscription):acknowledge")!, body: Data(acknowledge.utf8),
                    headers: ["Content-Type": "application/json"]))
        }
        return messages.sorted { $0.id < $1.id }.map(\.message)
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
