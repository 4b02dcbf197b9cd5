import Foundation
import Testing
import TollgateHTTP
import TollgateModel

/// localstripe from the project's venv, on a free loopback port, for one test.
package final class Localstripe: Sendable {
    package let process: Process
    package let url: String

    package init(process: Process, url: String) {
        self.process = process
        self.url = url
    }

    package static let binary = packageRoot.appendingPathComponent(".venv/bin/localstripe")

    /// - Throws: ``PeerMissing`` when localstripe is not installed (a test that starts it
    ///   carries `Peer.localstripe.trait`, so it is skipped instead).
    package static func start() async throws -> Localstripe {
        guard Peer.localstripe.isInstalled else { throw Peer.localstripe.missing }
        let http = CurlHTTPClient()
        let (process, port) = try await startPeer(
            "localstripe", executable: binary, arguments: { ["--port", String($0), "--from-scratch"] },
            ready: {
                let probe = HTTPRequest(
                    method: "GET", url: "http://127.0.0.1:\($0)/v1/customers", headers: [("Authorization", "Bearer sk_test_probe")],
                    timeout: .seconds(1))
                return (try? await http.send(probe))?.status == 200
            })
        return Localstripe(process: process, url: "http://127.0.0.1:\(port)")
    }

    /// SIGKILL: localstripe ignores SIGTERM, and its state is scratch anyway. localstripe
    /// saves its state to `/tmp/localstripe.pickle` after every change, a path it does not
    /// let us choose (`--from-scratch` only stops it reading the file back): the file goes
    /// with the peer, so the suite leaves nothing in /tmp.
    package func stop() {
        kill(process.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(atPath: "/tmp/localstripe.pickle")
    }
}
