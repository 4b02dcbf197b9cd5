import AccountAPI
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(AccountAPIFunction.self)
