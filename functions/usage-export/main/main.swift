import TollgateDrivers
import TollgateExport
import TollgateModel
import TollgateRuntime
import UsageExport

// usage-export: read configuration, open ports from their URLs, serve.
await FunctionMain.run(declaration: UsageExportFunction.declaration) { runtime, logger in
    let environment = try await Environment.resolvingSecrets(of: UsageExportFunction.declaration)
    let configuration = try UsageExporter.Configuration.fromEnvironment(environment)
    let signer = try ExportSigner.fromEnvironment(environment)
    let ports = try await Ports.open(environment: environment)
    let exporter = UsageExporter(
        configuration: configuration, store: ports.store, blobs: ports.blobs, tasks: ports.tasks, signer: signer, clock: ports.clock)
    let verifier = FunctionMain.verifier(runtime, declaration: UsageExportFunction.declaration, clock: ports.clock)
    return FunctionHost(
        handler: UsageExportFunction(exporter: exporter), store: ports.store, clock: ports.clock, verifier: verifier, logger: logger,
        maxBodyBytes: runtime.maxBodyBytes)
}
