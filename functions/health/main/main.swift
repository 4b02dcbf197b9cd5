import Health
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(HealthFunction.self)
