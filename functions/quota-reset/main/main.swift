import QuotaReset
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(QuotaResetFunction.self)
