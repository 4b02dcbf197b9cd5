import Cleanup
import TollgateDrivers
import TollgateExport
import TollgateModel
import TollgateRuntime

// cleanup: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: CleanupFunction.declaration) { runtime, logger in
    let environment = Environment()
    let retention = try Retention.fromEnvironment(environment)
    let ports = try await Ports.open(environment: environment)
    let verifier = FunctionMain.verifier(runtime, declaration: CleanupFunction.declaration, clock: ports.clock)
    let handler = CleanupFunction(
        store: ports.store, blobs: ports.blobs, layout: ExportLayout(prefix: environment["TOLLGATE_EXPORT_PREFIX"] ?? "usage/"),
        retention: retention)
    return FunctionHost(
        handler: handler, store: ports.store, clock: ports.clock, verifier: verifier, logger: logger, maxBodyBytes: runtime.maxBodyBytes)
}
