import Foundation
import Testing
import TollgateHTTP
import TollgateModel

/// Runs scripts under `Tests/peers` with the project's virtual environment.
package enum PythonPeer {
    package static let python = packageRoot.appendingPathComponent(".venv/bin/python")
    package static var available: Bool { FileManager.default.isExecutableFile(atPath: python.path) }
    package static func run(script: String, input: JSONValue, environment: [String: String] = [:]) async throws -> JSONValue {
        let process = Process()
        process.executableURL = python
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        process.arguments = [packageRoot.appendingPathComponent("Tests/peers/\(script)").path]
        let run = try await runToEnd(process, input: Data(input.rendered().utf8))
        guard run.status == 0 else {
            throw TollgateError(.internal, "\(script) exited \(run.status): \(String(decoding: run.errors, as: UTF8.self))")
        }
        return try JSONValue.parse(run.output)
    }

    /// Runs a program of the repository (`path` from its root) with `arguments`: its exit
    /// status and what it printed (both streams).
    package static func runProgram(_ path: String, arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = python
        process.arguments = [packageRoot.appendingPathComponent(path).path] + arguments
        let run = try await runToEnd(process, combined: true)
        return (run.status, String(decoding: run.output, as: UTF8.self))
    }
}
