import Foundation
import Synchronization
import TollgateModel

/// A real `redis-server` (Debian's) on a loopback port, without persistence, as a
/// Memorystore instance without RDB or AOF behaves: a restart starts it empty, with a new
/// `run_id`. Stopped with SIGKILL.
package final class RedisServer: Sendable {
    package static let binary = Peer.firstExecutable(["/usr/bin/redis-server", "/usr/local/bin/redis-server"])
    private let bound = Mutex(0)
    /// The loopback port, the same across restarts.
    package var port: Int { bound.withLock { $0 } }
    private let process = Mutex<Process?>(nil)

    package init() async throws {
        // Tests start servers at once: a port another took first is given up for a new one.
        for _ in 0..<5 {
            let candidate = try freeLoopbackPort()
            bound.withLock { $0 = candidate }
            do {
                try await start()
                return
            } catch let error as TollgateError where error.code == .unavailable { continue }
        }
        throw TollgateError(.unavailable, "redis-server did not start")
    }

    package var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server (again) on its port and waits until it answers.
    package func start() async throws {
        guard let binary = Self.binary else { throw Peer.redis.missing }
        let launched = Process()
        launched.executableURL = URL(fileURLWithPath: binary)
        launched.arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes",
            "--daemonize", "no",
        ]
        launched.standardOutput = FileHandle.nullDevice
        launched.standardError = FileHandle.nullDevice
        try launched.run()
        process.withLock { $0 = launched }
        for _ in 0..<200 where launched.isRunning {
            // The server answering must be this one (another test's could hold the port).
            if await answers(pid: launched.processIdentifier) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        kill()
        throw TollgateError(.unavailable, "redis-server did not start on port \(port)")
    }

    /// SIGKILL, as a crash or a failover leaves a client: the data is gone with it.
    package func kill() {
        guard
            let running = process.withLock({ process -> Process? in
                defer { process = nil }
                return process
            })
        else { return }
        if running.isRunning {
            Foundation.kill(running.processIdentifier, SIGKILL)
            running.waitUntilExit()
        }
    }

    private func answers(pid: Int32) async -> Bool {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return false }
        let info = Array("INFO server\r\n".utf8)
        guard write(descriptor, info, info.count) == info.count else { return false }
        var reply = [UInt8](repeating: 0, count: 8_192)
        let count = read(descriptor, &reply, reply.count)
        return count > 0 && String(decoding: reply.prefix(count), as: UTF8.self).contains("process_id:\(pid)\r\n")
    }

    deinit { kill() }
}
