import Foundation
import Testing
import TollgateHTTP
import TollgateModel

/// Runs scripts under `Tests/peers` with the project's virtual environment.
package enum PythonPeer {
    package static let python = packageRoot.appendingPathComponent(".venv/bin/python")
    package static var available: Bool { FileManager.default.isExecutableFile(atPath: python.path) }
    package static func run(script: String, input: JSONValue, environment: [String: String] = [:]) async throws -> JSONValue {
        try await offThePool { try runBlocking(script: script, input: input, environment: environment) }
    }

    private static func runBlocking(script: String, input: JSONValue, environment: [String: String]) throws -> JSONValue {
        let process = Process()
        process.executableURL = python
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        process.arguments = [packageRoot.appendingPathComponent("Tests/peers/\(script)").path]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.rendered().utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TollgateError(.internal, "\(script) exited \(process.terminationStatus)") }
        return try JSONValue.parse(output)
    }

    /// Runs a program of the repository (`path` from its root) with `arguments`, waiting on
    /// the calling thread: its exit status and what it printed (both streams).
    package static func runProgram(_ path: String, arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = python
        process.arguments = [packageRoot.appendingPathComponent(path).path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: printed, as: UTF8.self))
    }
}
