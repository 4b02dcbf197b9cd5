import Foundation
import Testing
import TollgateModel
import TollgateTestSupport
import TollgateTesting

/// The helpers every peer and child of the suite is started and run with: a wrong answer
/// here made a test talk to another test's localstripe, or hung the whole run.
@Suite struct TestProcessSupportTests {
    /// A child holding `count` listening loopback sockets, and their ports. (In a child:
    /// this process's own descriptors are kept few, see ``descriptorCount``.)
    static func listeningChild(count: Int) async throws -> (Process, [Int]) {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        child.arguments = [
            "-c",
            """
            import socket, sys, time
            held = []
            for _ in range(\(count)):
                s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); held.append(s)
            print(" ".join(str(s.getsockname()[1]) for s in held), flush=True)
            time.sleep(60)
            """,
        ]
        let output = Pipe()
        child.standardOutput = output
        try child.run()
        // The ports, one line: read until its end (`availableData` answers what has come).
        let line = try await offThePool {
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")), case let data = output.fileHandleForReading.availableData, !data.isEmpty {
                line += data
            }
            return line
        }
        return (child, String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace).compactMap { Int($0) })
    }

    /// With hundreds of sockets the kernel's table runs to many pages, the case a first
    /// version missed (it read one page, so on a busy run no peer was ever "listening").
    @Test func isListening_findsTheHoldersSocket_pastTheTablesFirstPage_andNoOtherProcesss() async throws {
        let (child, ports) = try await Self.listeningChild(count: 200)
        defer {
            if child.isRunning {
                kill(child.processIdentifier, SIGKILL)
                child.waitUntilExit()
            }
        }
        let last = try #require(ports.last)
        #expect(ports.count == 200)
        #expect(isListening(pid: child.processIdentifier, port: last))
        #expect(!isListening(pid: getpid(), port: last), "this process does not hold it")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(!isListening(pid: child.processIdentifier, port: last))
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

/// The folders a killed process could not remove are removed by the next one.
@Suite struct EndedProcessFoldersTests {
    @Test func theFoldersOfEndedProcessesGo_andThoseOfLiveOnesStay() throws {
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let prefix = "tollgate-ended-folder-test-"
        let files = FileManager.default
        let gone = files.temporaryDirectory.appendingPathComponent("\(prefix)\(ended.processIdentifier)")
        let mine = files.temporaryDirectory.appendingPathComponent("\(prefix)\(getpid())")
        for folder in [gone, mine] { try files.createDirectory(at: folder, withIntermediateDirectories: true) }
        defer { try? files.removeItem(at: mine) }
        #expect(EndedProcessFolders.remove(prefix: prefix) == 1)
        #expect(!files.fileExists(atPath: gone.path) && files.fileExists(atPath: mine.path))
    }
}
