import Cleanup
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(CleanupFunction.self)
