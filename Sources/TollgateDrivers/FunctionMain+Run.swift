import TollgateModel
import TollgateRuntime

extension FunctionMain {
    /// The whole of a function's `main.swift`: reads the runtime's settings, resolves the
    /// declared secrets (`sm://` references), opens the ports from their URLs, builds the
    /// function through ``BuildableFunction/make(_:)`` and serves it until SIGTERM. A
    /// missing or malformed setting stops start-up with one line naming it.
    public static func run<Handler: BuildableFunction>(_ function: Handler.Type, environment: Environment = Environment()) async {
        await run(declaration: Handler.declaration, environment: environment) { _, logger in
            let resolved = try await Environment.resolvingSecrets(of: Handler.declaration, in: environment)
            let ports = try await Ports.open(environment: resolved, topics: Handler.declaration.topics)
            let setup = try FunctionSetup(environment: resolved, ports: ports, declaration: Handler.declaration)
            return try FunctionHost<Handler>.make(setup, logger: logger)
        }
    }
}
