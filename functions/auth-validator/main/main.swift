import AuthValidator
import TollgateDrivers
import TollgateModel
import TollgateRuntime

// auth-validator: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: AuthValidatorFunction.declaration) { runtime, logger in
    let environment = try await Environment.resolvingSecrets(of: AuthValidatorFunction.declaration)
    let ports = try await Ports.open(environment: environment)
    let configuration = try AuthValidatorFunction.Configuration(environment: environment, clock: ports.clock)
    let invalidation = FunctionMain.subscriptionVerifier(runtime, clock: ports.clock)
    let handler = AuthValidatorFunction(
        configuration: configuration, store: ports.store, clock: ports.clock, invalidationVerifier: invalidation)
    return FunctionHost(
        handler: handler, store: ports.store, clock: ports.clock, verifier: nil, logger: logger, maxBodyBytes: runtime.maxBodyBytes)
}
