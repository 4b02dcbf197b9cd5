import TollgateDrivers
import TollgateRuntime
import UsageReport

await FunctionMain.run(UsageReportFunction.self)
