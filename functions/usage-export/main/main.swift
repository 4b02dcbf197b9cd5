import TollgateDrivers
import TollgateRuntime
import UsageExport

await FunctionMain.run(UsageExportFunction.self)
