import Foundation
import TollgateDrivers
import TollgateFunctions
import TollgateModel
import TollgateRuntime

// Every function in one executable, one image: Cloud Run names each service after its
// function and sets K_SERVICE to that name, so the service chooses what this serves.
// (docs/architecture.md: one binary costs 1% of size and nothing at start-up.)

func serve<Function: BuildableFunction>(_ function: Function.Type) async { await FunctionMain.run(function) }

let name = ProcessInfo.processInfo.environment[RuntimeConfiguration.Settings.service.name] ?? ""
guard let function = TollgateFunctions.all.first(where: { $0.declaration.name == name }) else {
    let names = TollgateFunctions.declarations.map(\.name).joined(separator: ", ")
    FileHandle.standardError.write(
        Data("tollgate-functions: configuration: K_SERVICE names no function ('\(name)'); one of \(names)\n".utf8))
    exit(78)  // EX_CONFIG, as a missing setting
}
await serve(function)
