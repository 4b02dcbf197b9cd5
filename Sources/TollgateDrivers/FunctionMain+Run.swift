import TollgateModel
import TollgateRuntime

extension FunctionMain {
    /// The whole of a function's `main.swift`: reads the runtime's settings, resolves the
    /// declared secrets (`sm://` references), opens the ports from their URLs, builds the
    /// function through ``BuildableFunction/make(_:)`` and serves it until SIGTERM. A
    /// missing or malformed setting stops start-up with one line naming it.
    public static func run<Handler: BuildableFunction>(_ function: Handler.Type, environment: Environment = Environment()) async {
        await run(declaration: Handler.declaration, environment: environment) { _, logger in
            for warning in Handler.startupWarnings(environment) { logger.warning("\(warning)") }
            let resolved = try await Environment.resolvingSecrets(of: Handler.declaration, in: environment)
            let ports = try await Ports.open(environment: resolved, topics: Handler.declaration.topics, clock: try clock(resolved))
            let setup = try FunctionSetup(environment: resolved, ports: ports, declaration: Handler.declaration)
            return try FunctionHost<Handler>.make(setup, logger: logger)
        }
    }

    /// The wall clock, or with `TOLLGATE_CLOCK_OFFSET_SECONDS` (set by `tollgate serve
    /// --processes --start`) the wall clock moved by it: honoured only on local state or
    /// Google's Firestore emulator, never beside a production store.
    package static func clock(_ environment: Environment) throws -> any TollgateModel.Clock {
        guard let offset = try environment.optionalInteger(Ports.Settings.clockOffset) else { return SystemClock() }
        let store = try environment.required(Ports.Settings.store)
        guard store.hasPrefix("sqlite:") || environment.isSet(Ports.Settings.firestoreEmulator) else {
            throw ConfigurationError(
                Ports.Settings.clockOffset.name, "moves the clock for local runs only: the store must be sqlite: or Firestore's emulator")
        }
        return ShiftedClock(offsetSeconds: Int64(offset))
    }
}
