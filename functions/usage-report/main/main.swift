import TollgateDrivers
import TollgateModel
import TollgateRuntime
import TollgateStripe
import UsageReport

// usage-report: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: UsageReportFunction.declaration) { runtime, logger in
    let environment = try await Environment.resolvingSecrets(of: UsageReportFunction.declaration)
    let stripe = StripeClient(
        configuration: .init(
            baseURL: environment["TOLLGATE_STRIPE_API_BASE"] ?? "https://api.stripe.com", apiKey: try environment.required("STRIPE_API_KEY")
        ))
    let ports = try await Ports.open(environment: environment)
    let verifier = FunctionMain.verifier(runtime, declaration: UsageReportFunction.declaration, clock: ports.clock)
    let handler = UsageReportFunction(
        store: ports.store, billing: stripe, eventName: environment["TOLLGATE_METER_EVENT_NAME"] ?? "api_units")
    return FunctionHost(
        handler: handler, store: ports.store, clock: ports.clock, verifier: verifier, logger: logger, maxBodyBytes: runtime.maxBodyBytes)
}
