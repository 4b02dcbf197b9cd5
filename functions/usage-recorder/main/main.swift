import TollgateDrivers
import TollgateModel
import TollgateRuntime
import UsageRecorder

// usage-recorder: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: UsageRecorderFunction.declaration) { runtime, logger in
    let ports = try await Ports.open(environment: Environment())
    let verifier = FunctionMain.verifier(runtime, declaration: UsageRecorderFunction.declaration, clock: ports.clock)
    return FunctionHost(
        handler: UsageRecorderFunction(store: ports.store), store: ports.store, clock: ports.clock, verifier: verifier, logger: logger,
        maxBodyBytes: runtime.maxBodyBytes)
}
