import AuthValidator
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(AuthValidatorFunction.self)
