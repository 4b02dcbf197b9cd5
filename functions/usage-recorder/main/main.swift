import TollgateDrivers
import TollgateRuntime
import UsageRecorder

await FunctionMain.run(UsageRecorderFunction.self)
