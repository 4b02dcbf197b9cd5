import Foundation
import Logging
import Testing
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// A handler that takes Pub/Sub messages but declares a Scheduler trigger.
struct MismatchedFunction: BuildableFunction {
    typealias Event = PubSubEvent
    static let declaration = FunctionDeclaration(
        name: "mismatched", trigger: .scheduler(job: "mismatched", schedule: "* * * * *", timeZone: "Etc/UTC"))
    static func make(_ setup: FunctionSetup) throws -> Self { Self() }
    func handle(_ event: PubSubEvent, context: FunctionContext) async throws -> FunctionResponse { FunctionResponse(status: 204) }
}

/// The function kit: one constructor per function, one statement per entry point.
@Suite struct FunctionKitTests {
    /// It would have dead-lettered every delivery; now start-up stops with one line.
    @Test func aHandlerWhoseEventIsNotItsTriggers_stopsStartUp_namingBoth() throws {
        let ports = Ports(sqlite: try temporaryDatabase())
        let environment = Environment([
            "TOLLGATE_AUDIENCE": "https://mismatched.test", "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
        ])
        let setup = try FunctionSetup(environment: environment, ports: ports, declaration: MismatchedFunction.declaration)
        do {
            _ = try FunctionHost<MismatchedFunction>.make(setup, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
            Issue.record("a mismatched trigger was accepted")
        } catch let error as ConfigurationError {
            #expect(error.setting == "trigger")
            #expect(error.description.contains("scheduler") && error.description.contains("pubsub"))
        }
    }

    @Test(arguments: EmulatedFunction.names)
    func everyEntryPoint_isOneStatement(function: String) throws {
        let text = try String(
            contentsOf: packageRoot.appendingPathComponent("functions/\(function)/main/main.swift"), encoding: .utf8)
        let statements = text.split(separator: "\n").filter { !$0.hasPrefix("import ") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(statements.count == 1, "\(statements)")
        #expect(statements.first?.hasPrefix("await FunctionMain.run(") == true)
    }

    @Test func everyDeclaredTrigger_matchesItsHandlersEvent() throws {
        for function in EmulatedFunction.functions {
            #expect(eventKind(of: function) == function.declaration.trigger.kind, "\(function.declaration.name)")
        }
    }

    func eventKind<Function: BuildableFunction>(of function: Function.Type) -> TriggerKind { Function.Event.kind }
}
