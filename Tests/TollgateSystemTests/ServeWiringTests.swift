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
        guard let status = try await serve.process.exitStatus(within: .seconds(15)) else {
            Issue.record("serve kept serving: \(serve.output)")
            _ = try await serve.stop()
            return
        }
        #expect(status == 69)
        #expect(serve.output.contains("Pub/Sub emulator 127.0.0.1:\(closed) could not be wired"), "\(serve.output)")
    }
}
