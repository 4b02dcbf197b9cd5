import Foundation
import Logging
import Testing
import TollgateDrivers
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateEmulator

/// The emulator's senders shape requests as Google does, and the runtime's real OIDC
/// check accepts the local issuer's tokens: the same code path as in the cloud.
@Suite struct EmulatorSenderTests {
    let ports: Ports
    let clock = VirtualClock(start: Fixture.defaultStart)

    init() throws { ports = Ports(sqlite: try temporaryDatabase(clock: clock)) }

    func senders(for declaration: FunctionDeclaration) -> Senders {
        Senders(issuer: sharedIssuer, clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"), function: declaration)
    }

    var logger: Logger { Logger(label: "t") { _ in SwiftLogNoOpLogHandler() } }

    /// A stub handler behind the runtime, with the OIDC verifier the emulator's
    /// environment configures for its declaration: the check every function gets.
    func wrap<Handler: FunctionHandler>(_ handler: Handler) throws -> EmulatedFunction {
        let environment = try LocalEnvironment.environment(
            for: handler.declaration, keys: try LocalKeys(oidc: sharedIssuer, clerk: sharedIssuer), stripeBaseURL: "http://127.0.0.1:1")
        let setup = try FunctionSetup(environment: Environment(environment), ports: ports, declaration: handler.declaration)
        let host = FunctionHost(handler: handler, store: ports.store, clock: ports.clock, verifier: setup.oidcVerifier, logger: logger)
        return EmulatedFunction(declaration: handler.declaration, deliver: { await host.handle($0) })
    }

    @Test(arguments: ["push", "cloudevent-binary", "cloudevent-structured"])
    func pubSubSender_inEveryMode_isDecodedAndAuthenticated(mode: String) async throws {
        let handler = RecordingPubSubFunction()
        let function = try wrap(handler)
        let send: JSONValue = .object([
            "pubsub": .object([
                "mode": .string(mode), "data": .object(["requestId": .string("req_1")]), "attributes": .object(["kind": .string("usage")]),
                "messageId": .string("42"), "deliveryAttempt": .integer(2),
            ])
        ])
        let response = await function.deliver(try senders(for: handler.declaration).request(for: send, delivery: 1))
        #expect(response.status == 204)
        let message = try #require(handler.received.all.first?.message)
        #expect(message.messageId == "42")
        #expect(message.attributes == ["kind": "usage"])
        #expect(try JSONValue.parse(message.data)["requestId"] == .string("req_1"))
        #expect(message.publishTime == clock.now())
    }

    @Test func pubSubSender_withAnotherAudience_isRefusedByTheRealCheck() async throws {
        let handler = RecordingPubSubFunction()
        let function = try wrap(handler)
        let send: JSONValue = .object(["pubsub": .object(["data": .string("x"), "audience": .string("http://localhost:8080/other")])])
        #expect(await function.deliver(try senders(for: handler.declaration).request(for: send, delivery: 1)).status == 401)
        let stranger: JSONValue = .object(["pubsub": .object(["data": .string("x"), "invoker": .string("intruder@example.com")])])
        #expect(await function.deliver(try senders(for: handler.declaration).request(for: stranger, delivery: 1)).status == 403)
    }

    @Test func taskSender_setsTheCloudTasksHeaders() async throws {
        let handler = RecordingTaskFunction()
        let function = try wrap(handler)
        let send: JSONValue = .object([
            "task": .object(["name": .string("report-a1-2026-01-01"), "retryCount": .integer(1), "body": .object([:])])
        ])
        #expect(await function.deliver(try senders(for: handler.declaration).request(for: send, delivery: 1)).status == 200)
        let task = try #require(handler.received.all.first?.task)
        #expect(task.queueName == "usage-report")
        #expect(task.taskName == "report-a1-2026-01-01")
        #expect(task.retryCount == 1)
        #expect(task.previousResponse == 503)
    }

    @Test func schedulerSender_setsTheCloudSchedulerHeaders() async throws {
        let handler = RecordingSchedulerFunction()
        let function = try wrap(handler)
        let send: JSONValue = .object(["scheduler": .object([:])])
        #expect(await function.deliver(try senders(for: handler.declaration).request(for: send, delivery: 1)).status == 200)
        #expect(handler.received.all.first?.run == CloudSchedulerRequest(jobName: "quota-reset", scheduleTime: clock.now()))
    }

    @Test func groups_shuffleOnlyWithinATimeGroup_andRepeatEachStep() {
        let steps = (1...6).map { Fixture.Step(index: $0, advance: $0 == 4 ? 60 : 0, send: .null, expectedStatus: nil) }
        let groups = Replayer.groups(steps, duplicates: 2, seed: 7)
        #expect(groups.map(\.steps.count) == [6, 6])
        #expect(Set(groups[0].steps.map(\.index)) == [1, 2, 3])
        #expect(Set(groups[1].steps.map(\.index)) == [4, 5, 6])
        #expect(Replayer.groups(steps, duplicates: 2, seed: 7).map { $0.steps.map(\.index) } == groups.map { $0.steps.map(\.index) })
    }
}
