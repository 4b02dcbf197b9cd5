import Foundation
import Synchronization
import Testing
import TollgateModel

/// A built product of this package, next to the test bundle.
package func productURL(_ name: String) -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
}

/// A function executable started on a free port; its JSON log lines are collected.
package final class RunningFunction: Sendable {
    package let process: Process
    package let lines = Recorder<String>()
    package let port: Int

    package init(_ product: String, environment: [String: String]) async throws {
        let binary = productURL(product)
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build it first: swift build --product \(product)")
        process = Process()
        process.executableURL = binary
        // Metrics on a loopback port of their own, as deployed (TOLLGATE_METRICS_PORT).
        process.environment = environment.merging(["PORT": "0", "TOLLGATE_METRICS_PORT": "0"]) { given, _ in given }
        collectOutput(of: process, into: lines, keptAs: product)
        try process.run()
        var found: Int?
        // Until it says where it listens, or exits (a configuration error is exit 78).
        var exited = false
        for _ in 0..<200 where found == nil && !exited {
            exited = !process.isRunning
            try await Task.sleep(for: .milliseconds(50))
            found = lines.all.compactMap { try? JSONValue.parse(Data($0.utf8)) }
                .first { $0["message"]?.stringValue == "listening" }?["port"]?.stringValue.flatMap { Int($0) }
        }
        guard let found else {
            process.terminate()
            throw TollgateError(.unavailable, "\(product) did not start: \(lines.all.joined(separator: "\n"))")
        }
        port = found
    }

    package var url: URL { URL(string: "http://127.0.0.1:\(port)/")! }

    /// `GET /metrics` on the metrics port, whose address the start-up log names.
    package var metricsURL: URL {
        get throws {
            let address = lines.all.compactMap { try? JSONValue.parse(Data($0.utf8)) }
                .first { $0["message"]?.stringValue == "serving metrics" }?["address"]?.stringValue
            return URL(string: "http://\(try #require(address))/metrics")!
        }
    }
    package var log: String { lines.all.joined(separator: "\n") }

    /// SIGKILL, as a crash or an out-of-memory kill would end it, and waits for the exit.
    package func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits up to `seconds` for the exit.
    @discardableResult
    package func stop(within seconds: Int = 10) async throws -> Int32? {
        process.terminate()
        return try await process.exitStatus(within: .seconds(seconds))
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// Collects what `process` prints (both streams) into `lines`, and into the suite's kept
/// logs as `product`. At the end of the output the pipe and the log file are let go: a
/// suite that starts hundreds of processes must not keep descriptors for each, since
/// Foundation's `Process.run()` can crash once this process has about 1,365 open
/// (swift-corelibs-foundation#5472: it reads past a full `/proc/self/fd` buffer).
package func collectOutput(of process: Process, into lines: Recorder<String>, keptAs product: String) {
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let kept = TestLogs.file(for: product)
    // A thread of its own reads to the end, then closes both: a readability handler cannot
    // be removed from inside itself on Linux (its setter waits on the queue it runs on).
    Thread {
        let reading = output.fileHandleForReading
        // `availableData` answers what the pipe holds as soon as it holds any; empty at the end.
        while case let data = reading.availableData, !data.isEmpty {
            kept?.write(data)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") { lines.append(String(line)) }
        }
        try? reading.close()
        try? kept?.close()
    }.start()
}

/// Runs `body` on a thread of its own and awaits it: for waits that block the thread (a
/// child's output to its end, `waitUntilExit`). On Swift's cooperative pool, which has as
/// many threads as cores, two such waits would stall every other test of the run.
package func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

extension Process {
    /// Waits up to `limit` for the exit: the exit status, or nil while the process still
    /// runs. Foundation's `terminationStatus` traps (crashing the whole test run) when it
    /// is read of a process that has not exited.
    package func exitStatus(within limit: Duration) async throws -> Int32? {
        let started = ContinuousClock.now
        while isRunning, ContinuousClock.now - started < limit { try await Task.sleep(for: .milliseconds(20)) }
        return isRunning ? nil : terminationStatus
    }
}

/// Runs the `tollgate` command line; returns its exit status, standard output and error.
package func runTollgate(_ arguments: [String], environment: [String: String], in directory: URL? = nil) async throws -> (
    Int32, String, String
) {
    let process = Process()
    if let directory { process.currentDirectoryURL = directory }
    process.executableURL = productURL("tollgate")
    process.arguments = arguments
    process.environment = environment
    let run = try await runToEnd(process)
    return (run.status, String(decoding: run.output, as: UTF8.self), String(decoding: run.errors, as: UTF8.self))
}

/// Runs `process` to its end: feeds it `input`, reads both streams at once (a child that
/// fills one pipe while the other is read would wait forever) on threads of their own, and
/// kills it with SIGKILL past `limit`, failing with its name rather than hanging the run.
/// - Parameter combined: both streams into `output`, in the order written.
package func runToEnd(_ process: Process, input: Data? = nil, combined: Bool = false, limit: Duration = .seconds(300)) async throws
    -> (status: Int32, output: Data, errors: Data)
{
    let output = Pipe()
    let errors = combined ? output : Pipe()
    let standardInput = input.map { _ in Pipe() }
    process.standardOutput = output
    process.standardError = errors
    if let standardInput { process.standardInput = standardInput }
    try process.run()
    let pid = process.processIdentifier
    let watchdog = Task {
        try? await Task.sleep(for: limit)
        guard !Task.isCancelled, process.isRunning else { return false }
        kill(pid, SIGKILL)
        return true
    }
    let (printed, complained) = try await offThePool {
        let complained = Mutex(Data())
        let done = DispatchGroup()
        if !combined {
            done.enter()
            Thread {
                complained.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() }
                done.leave()
            }.start()
        }
        if let standardInput, let input {
            done.enter()
            Thread {
                standardInput.fileHandleForWriting.write(input)
                try? standardInput.fileHandleForWriting.close()
                done.leave()
            }.start()
        }
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return (printed, complained.withLock { $0 })
    }
    watchdog.cancel()
    if await watchdog.value {
        let name = process.executableURL?.lastPathComponent ?? "a process"
        throw TollgateError(
            .deadlineExceeded, "\(name) \(process.arguments?.prefix(3).joined(separator: " ") ?? "") ran past \(limit) and was killed")
    }
    return (process.terminationStatus, printed, complained)
}

/// Starts a loopback peer (localstripe, fake-gcs-server, the metadata stand-in) on a free
/// port: runs `executable` with `arguments(port)`, waits until `ready(port)` answers, and
/// tries another port when this one was taken or the peer died; the answer must come
/// from the process started, not from a peer of another test. Stopped with SIGKILL:
/// Python children of the test runner inherit an ignored SIGTERM.
package func startPeer(
    _ name: String, executable: URL, arguments: (Int) -> [String], ready: @escaping (Int) async -> Bool
) async throws -> (process: Process, port: Int) {
    for _ in 0..<5 {
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments(port)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 where process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            if isListening(pid: process.processIdentifier, port: port), await ready(port) { return (process, port) }
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
    throw TollgateError(.unavailable, "\(name) did not start")
}

/// Whether process `pid` itself holds the listening TCP socket on `port`. A probe that
/// answers proves only that *something* listens there: another test's peer may hold the
/// port, while the process just started failed to bind it and is on its way out.
package func isListening(pid: Int32, port: Int) -> Bool {
    let hexPort = String(format: ":%04X", port)
    var inodes: Set<String> = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // Read to the end: Foundation's `String(contentsOfFile:)` stops at the first page of a
        // /proc file (its size reads as 0), and a busy suite's table runs to many pages.
        guard let data = try? FileHandle(forReadingAtPath: table)?.readToEnd() else { continue }
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            // local_address, rem_address, st (0A is LISTEN), …, inode (the tenth field).
            guard fields.count > 9, fields[1].hasSuffix(hexPort), fields[3] == "0A" else { continue }
            inodes.insert(String(fields[9]))
        }
    }
    guard !inodes.isEmpty, let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else {
        return false
    }
    return descriptors.contains { descriptor in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)") else {
            return false
        }
        return target.hasPrefix("socket:[") && inodes.contains(String(target.dropFirst(8).dropLast()))
    }
}

/// A loopback port free now (the kernel's choice), for a peer that must be told its port.
package func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw TollgateError(.unavailable, "socket() failed: \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw TollgateError(.unavailable, "no free loopback port: \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A blocking TCP connection to 127.0.0.1:`port` with a receive timeout: for clients
/// that misbehave in ways URLSession cannot (a half-sent request, a hang-up mid-body).
package final class RawConnection {
    package let descriptor: Int32

    package init(port: Int, receiveTimeout seconds: Int) throws {
        #if canImport(Glibc)
            descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TollgateError(.unavailable, "cannot connect to \(port)") }
    }

    package func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw POSIXError(.EPIPE) }
    }

    /// What the server sends until it closes (or the receive timeout passes: nil).
    package func readUntilClosed() -> String? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return String(decoding: received, as: UTF8.self) }
            if count < 0 { return nil }
            received += buffer[0..<count]
        }
    }

    deinit { close(descriptor) }
}

/// Where the suite keeps what the real executables print, when `TOLLGATE_TEST_LOG_DIR`
/// names a folder (`./dev test` sets it): `Tests/scan-logs.sh` then fails the run on any
/// whole API key or secret in those lines, whichever test made them.
package enum TestLogs {
    /// A new file in the folder for one process's output, or nil when logs are not kept.
    package static func file(for product: String) -> FileHandle? {
        guard let folder = ProcessInfo.processInfo.environment["TOLLGATE_TEST_LOG_DIR"], !folder.isEmpty else { return nil }
        let path = "\(folder)/\(product)-\(getpid())-\(UUID().uuidString.prefix(8)).log"
        guard FileManager.default.createFile(atPath: path, contents: nil) else { return nil }
        return FileHandle(forWritingAtPath: path)
    }
}
