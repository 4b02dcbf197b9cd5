import Foundation
import Glibc
import Logging
import Testing
import TollgateEmulator
import TollgateHTTP
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateStripe

/// JWKS documents are fetched over the same libcurl client.
@Suite struct JWKSDownloadTests {
    @Test func download_readsAServedKeySet_andCallsA404Unavailable() async throws {
        let directory = scratchURL("jwks")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let document = Data(sharedIssuer.jwksDocument.rendered().utf8)
        try document.write(to: directory.appendingPathComponent("certs"))
        let port = try freeLoopbackPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory.path, String(port)]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: Python children of the test runner inherit an ignored SIGTERM, and a
        // terminated server outlived every run.
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        var fetched: Data?
        for _ in 0..<50 where fetched == nil {
            try await Task.sleep(for: .milliseconds(100))
            guard isListening(pid: server.processIdentifier, port: port) else { continue }
            fetched = try? await RemoteJWKS.download(URL(string: "http://127.0.0.1:\(port)/certs")!)
        }
        #expect(fetched == document)
        let keys = RemoteJWKS(url: URL(string: "http://127.0.0.1:\(port)/certs")!)
        _ = try await keys.key(id: sharedIssuer.keyID)
        await expectCode(.unavailable) { try await RemoteJWKS.download(URL(string: "http://127.0.0.1:\(port)/missing")!) }
        // A response over the client's limit is refused, not buffered.
        let small = CurlHTTPClient(maxResponseBytes: 16)
        let error = await expectCode(.unavailable) {
            try await small.send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/certs"))
        }
        #expect(error?.message.contains("over 16 bytes") == true)
    }
}
