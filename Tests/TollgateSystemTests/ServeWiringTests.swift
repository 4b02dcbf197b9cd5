import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// `tollgate serve --pubsub` wires Google's Pub/Sub emulator when it starts; one it cannot
/// reach stops serve with the reason, rather than leaving functions that would never be
/// pushed a message.
@Suite struct ServeWiringTests {
    @Test func serve_withAnUnreachablePubSubEmulator_stopsAndSaysWhy() async throws {
        // Nothing listens there: the emulator's calls are refused.
        let closed = try freeLoopbackPort()
        let state = scratchURL("serve-wiring").appendingPathComponent("state.db").path
        let arguments = ["--processes", "--pubsub", "pubsub://tollgate-wiring"]
        let environment = ["PUBSUB_EMULATOR_HOST": "127.0.0.1:\(closed)"]
        let serve: ServeProcess
        do {
            serve = try await ServeProcess(arguments, environment: environment, state: state)
        } catch {
            // It stopped before it announced its ports.
            #expect("\(error)".contains("could not be wired"), "\(error)")
            return
        }
        for _ in 0..<300 where serve.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!serve.process.isRunning, "serve kept serving: \(serve.output)")
        if serve.process.isRunning {
            _ = try await serve.stop()
            return
        }
        #expect(serve.process.terminationStatus == 69)
        #expect(serve.output.contains("Pub/Sub emulator 127.0.0.1:\(closed) could not be wired"), "\(serve.output)")
    }
}
