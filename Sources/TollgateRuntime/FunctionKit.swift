import Logging
import TollgateJOSE
import TollgateModel

/// A function that builds itself from what its service is given. Its ``make(_:)`` is the
/// one constructor: `main.swift` (`await FunctionMain.run(UsageRecorderFunction.self)`),
/// the emulator's replay, `serve` and `serve --processes`, and the tests all build it
/// there, from the same environment variables a deployed service gets.
public protocol BuildableFunction: FunctionHandler {
    /// The function's trigger, topic, schedule, queue, secrets, settings and resources.
    static var declaration: FunctionDeclaration { get }

    /// Builds the handler from its settings and secrets and its ports.
    /// - Throws: ``ConfigurationError`` naming a missing or malformed setting.
    static func make(_ setup: FunctionSetup) throws -> Self

    /// Settings that start the function but leave it weaker than intended: logged as
    /// warnings at start-up. None by default.
    static func startupWarnings(_ environment: Environment) -> [String]
}

extension BuildableFunction {
    public var declaration: FunctionDeclaration { Self.declaration }
    public static func startupWarnings(_ environment: Environment) -> [String] { [] }
}

/// What a function is built from: its environment (settings and secrets, as Cloud Run
/// injects them), its ports, and the runtime's own settings.
public struct FunctionSetup: Sendable {
    public var environment: Environment
    public var ports: Ports
    public var runtime: RuntimeConfiguration

    /// - Throws: ``ConfigurationError`` for a malformed runtime setting.
    public init(environment: Environment, ports: Ports, declaration: FunctionDeclaration) throws {
        self.environment = environment
        self.ports = ports
        runtime = try RuntimeConfiguration(environment: environment, function: declaration)
    }

    /// The verifier of the Google-signed OIDC tokens this service accepts (its
    /// `TOLLGATE_AUDIENCE`, `TOLLGATE_INVOKERS`, issuers and keys), or nil when none are
    /// configured: a public HTTP function then refuses its push subscriptions.
    public var oidcVerifier: OIDCVerifier? { FunctionMain.subscriptionVerifier(runtime, clock: ports.clock) }
}

extension FunctionHost where Handler: BuildableFunction {
    /// Builds the handler through its constructor and hosts it, with the OIDC verifier its
    /// trigger requires (start-up has already refused a configuration without one).
    /// - Throws: ``ConfigurationError`` when the handler's event is not what its declared
    ///   trigger delivers (it would dead-letter every delivery), or from the constructor.
    public static func make(_ setup: FunctionSetup, logger: Logger) throws -> FunctionHost<Handler> {
        let declared = Handler.declaration.trigger.kind
        guard Handler.Event.kind == declared else {
            throw ConfigurationError(
                "trigger", "of \(Handler.declaration.name) is \(declared), but its handler takes \(Handler.Event.kind) events")
        }
        let handler = try Handler.make(setup)
        let verifier = Handler.declaration.trigger.requiresOIDC ? setup.oidcVerifier : nil
        return FunctionHost(
            handler: handler, store: setup.ports.store, clock: setup.ports.clock, verifier: verifier, logger: logger,
            maxBodyBytes: setup.runtime.maxBodyBytes, deadline: setup.runtime.deadline,
            serviceContext: .init(service: setup.runtime.service, version: setup.runtime.revision))
    }
}
