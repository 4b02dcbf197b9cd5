import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// The helpers every peer and child of the suite is started and run with: a wrong answer
/// here made a test talk to another test's localstripe, or hung the whole run.
@Suite struct TestProcessSupportTests {
    /// Opens a listening loopback socket on a port the kernel picks; answers both.
    static func listeningSocket() throws -> (descriptor: Int32, port: Int) {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        try #require(listening, "errno \(errno)")
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// With hundreds of sockets the kernel's table runs to many pages, the case a first
    /// version missed (it read one page, so on a busy run no peer was ever "listening").
    @Test func isListening_findsThisProcesssSocket_pastTheTablesFirstPage_andNotAClosedOne() throws {
        let others = try (0..<300).map { _ in try Self.listeningSocket() }
        defer { for socket in others { close(socket.descriptor) } }
        let last = try Self.listeningSocket()
        #expect(isListening(pid: getpid(), port: last.port))
        #expect(!isListening(pid: getppid(), port: last.port), "another process does not hold it")
        close(last.descriptor)
        #expect(!isListening(pid: getpid(), port: last.port))
    }

    @Test func runToEnd_collectsBothStreams_andKillsAChildPastItsLimit() async throws {
        let printing = Process()
        printing.executableURL = URL(fileURLWithPath: "/bin/sh")
        // More than a pipe holds on each stream, written stderr first: read one at a time, it waits forever.
        printing.arguments = ["-c", "head -c 200000 /dev/zero >&2; head -c 100000 /dev/zero; exit 3"]
        let run = try await runToEnd(printing)
        #expect(run.status == 3 && run.output.count == 100_000 && run.errors.count == 200_000)

        let hanging = Process()
        hanging.executableURL = URL(fileURLWithPath: "/bin/sleep")
        hanging.arguments = ["600"]
        let started = ContinuousClock.now
        await #expect(throws: TollgateError.self) { try await runToEnd(hanging, limit: .seconds(1)) }
        #expect(ContinuousClock.now - started < .seconds(60) && !hanging.isRunning)
    }
}
