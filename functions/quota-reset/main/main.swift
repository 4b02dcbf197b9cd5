import QuotaReset
import TollgateDrivers
import TollgateModel
import TollgateRuntime

// quota-reset: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: QuotaResetFunction.declaration) { runtime, logger in
    let environment = Environment()
    let period = try QuotaPeriod.fromEnvironment(environment)
    let ports = try await Ports.open(environment: environment)
    let verifier = FunctionMain.verifier(runtime, declaration: QuotaResetFunction.declaration, clock: ports.clock)
    return FunctionHost(
        handler: QuotaResetFunction(store: ports.store, period: period), store: ports.store, clock: ports.clock, verifier: verifier,
        logger: logger, maxBodyBytes: runtime.maxBodyBytes)
}
