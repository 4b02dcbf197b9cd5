import Foundation
import Testing
import TollgateHTTP
import TollgateModel

/// The metadata-server stand-in (`Tests/peers/metadata_server.py`) on a free loopback port.
package final class MetadataStandIn: Sendable {
    package let process: Process
    package let port: Int
    package var host: String { "127.0.0.1:\(port)" }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    /// - Throws: ``PeerMissing`` without the venv (a test that starts it carries
    ///   `Peer.pythonVenv.trait`, so it is skipped instead).
    package static func start() async throws -> MetadataStandIn {
        guard Peer.pythonVenv.isInstalled else { throw Peer.pythonVenv.missing }
        let script = packageRoot.appendingPathComponent("Tests/peers/metadata_server.py").path
        let (process, port) = try await startPeer(
            "the metadata stand-in", executable: PythonPeer.python, arguments: { [script, String($0)] },
            ready: {
                (try? await MetadataStandIn.counts(host: "127.0.0.1:\($0)")) != nil
            })
        return MetadataStandIn(process: process, port: port)
    }

    package func counts() async throws -> [String: Int64] { try await Self.counts(host: host) }

    package static func counts(host: String) async throws -> [String: Int64] {
        let response = try await CurlHTTPClient().send(HTTPRequest(method: "GET", url: "http://\(host)/__counts", timeout: .seconds(2)))
        return try JSONValue.parse(Data(response.body)).objectValue?.compactMapValues(\.integerValue) ?? [:]
    }

    /// SIGKILL: a Python child of the test runner inherits an ignored SIGTERM.
    package func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
