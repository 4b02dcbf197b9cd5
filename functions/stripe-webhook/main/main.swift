import StripeWebhook
import TollgateDrivers
import TollgateModel
import TollgateRuntime

// stripe-webhook: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: StripeWebhookFunction.declaration) { runtime, logger in
    let environment = try await Environment.resolvingSecrets(of: StripeWebhookFunction.declaration)
    let configuration = try StripeWebhookFunction.Configuration(environment: environment)
    let ports = try await Ports.open(environment: environment)
    let handler = StripeWebhookFunction(configuration: configuration, store: ports.store, publisher: ports.publisher)
    return FunctionHost(
        handler: handler, store: ports.store, clock: ports.clock, verifier: nil, logger: logger,
        maxBodyBytes: runtime.maxBodyBytes)
}
