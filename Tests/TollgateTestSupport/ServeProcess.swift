import Foundation
import Testing
import TollgateModel

/// `tollgate serve` started on a free port; its output is collected.
package final class ServeProcess: Sendable {
    package let process: Process
    package let lines = Recorder<String>()
    package let url: String
    /// The gRPC front's `HOST:PORT`, what `PUBSUB_EMULATOR_HOST` names for Google's clients.
    package let pubsubEmulatorHost: String
    package let state: String
    package let folder: URL

    /// - Parameters:
    ///   - environment: added to this process's (emulator hosts, say).
    ///   - state: a state file to serve, kept; by default a fresh one, removed at the end.
    package init(_ arguments: [String], environment: [String: String] = [:], state: String? = nil) async throws {
        folder = scratchURL("serve")
        self.state = state ?? folder.appendingPathComponent("state.db").path
        process = Process()
        process.executableURL = productURL("tollgate")
        process.arguments = ["serve", "--port", "0", "--state", self.state] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given } }
        collectOutput(of: process, into: lines, keptAs: "serve")
        try process.run()
        var found: String?
        for _ in 0..<600 where found == nil && process.isRunning {
            try await Task.sleep(for: .milliseconds(50))
            found = lines.all.first { $0.hasPrefix("listening on ") }.map { String($0.dropFirst("listening on ".count)) }
        }
        guard let found else {
            if process.isRunning { process.terminate() }
            throw TollgateError(.unavailable, "tollgate serve did not start: \(lines.all.joined(separator: "\n"))")
        }
        url = found
        let grpc = lines.all.first { $0.contains("Pub/Sub gRPC  PUBSUB_EMULATOR_HOST=") }
        pubsubEmulatorHost = String(grpc?.split(separator: "=").last?.split(separator: " ").first ?? "")
    }

    package var output: String { lines.all.joined(separator: "\n") }

    /// Runs a `tollgate` command against this local cloud.
    @discardableResult
    package func tollgate(_ arguments: [String], expectStatus: Int32 = 0) async throws -> String {
        let (status, out, err) = try await runTollgate(arguments, environment: ["TOLLGATE_SERVE_URL": url])
        #expect(status == expectStatus, "tollgate \(arguments.joined(separator: " ")): \(out)\(err)")
        return out + err
    }

    package func dump() async throws -> JSONValue {
        let (status, out, err) = try await runTollgate(["state", "dump", "--store", "sqlite://\(state)"], environment: [:])
        try #require(status == 0, "\(err)")
        return try JSONValue.parse(Data(out.utf8))
    }

    /// Waits until `condition` holds of the state (the wall-clock loop polls).
    package func waitFor(_ what: String, _ condition: (JSONValue) -> Bool) async throws -> JSONValue {
        for _ in 0..<200 {
            let state = try await dump()
            if condition(state) { return state }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what); serve said:\n\(output)")
        return try await dump()
    }

    package func stop() async throws -> Int32 {
        process.terminate()
        if let status = try await process.exitStatus(within: .seconds(15)) { return status }
        kill(process.processIdentifier, SIGKILL)
        return -1
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: folder)
    }
}
