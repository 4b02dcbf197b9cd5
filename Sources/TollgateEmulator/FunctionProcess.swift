import Foundation
import Synchronization
import TollgateHTTP
import TollgateModel
import TollgateRuntime

/// A function's own executable, started as Cloud Run starts a container (`PORT`, its
/// environment, the local stand-ins for its secrets) on the local cloud's state file:
/// `tollgate serve --processes` runs exactly what deploys.
public final class FunctionProcess: Sendable {
    public let declaration: FunctionDeclaration
    public let port: Int
    let process: Process
    static let client = CurlHTTPClient()

    /// Starts `executable` and waits for its `listening` line (up to 20 s); its log lines
    /// go to `logFile`.
    public init(declaration: FunctionDeclaration, executable: URL, environment: [String: String], logFile: URL) async throws {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw TollgateError(
                .notFound, "\(executable.path) is not built; run: swift build --product \(declaration.name) (or swift build)")
        }
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        let process = Process()
        process.executableURL = executable
        process.environment = ProcessInfo.processInfo.environment.filter { $0.key == "PATH" || $0.key == "HOME" }
            .merging(environment) { _, given in given }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let port = Mutex<Int?>(nil)
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            log.write(data)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                guard let entry = try? JSONValue.parse(Data(line.utf8)), entry["message"]?.stringValue == "listening",
                    let found = entry["port"]?.stringValue.flatMap({ Int($0) })
                else { continue }
                port.withLock { $0 = found }
            }
        }
        try process.run()
        let started = ContinuousClock.now
        while port.withLock({ $0 }) == nil {
            guard process.isRunning, ContinuousClock.now - started < .seconds(20) else {
                if process.isRunning { process.terminate() }
                throw TollgateError(.unavailable, "\(declaration.name) did not start; its log: \(logFile.path)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.declaration = declaration
        self.port = port.withLock { $0 } ?? 0
        self.process = process
    }

    /// The target the local cloud delivers to: HTTP to the process's port.
    public var target: LocalCloud.Target {
        let port = self.port
        return LocalCloud.Target(declaration: declaration) { request, deadline in
            let http = HTTPRequest(
                method: request.method, url: "http://127.0.0.1:\(port)\(request.target)", headers: request.headers,
                body: [UInt8](request.body),
                timeout: deadline)
            guard let response = try? await Self.client.send(http) else { return nil }
            var headers: [String: String] = [:]
            // Canonical names (`Retry-After`), whatever case the wire had.
            for header in response.headers {
                headers[
                    header.name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }.joined(separator: "-")
                ] =
                    header.value
            }
            return FunctionResponse(status: response.status, headers: headers, body: Data(response.body))
        }
    }

    /// SIGTERM, as Cloud Run stops an instance; SIGKILL after 10 s.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
