import StripeWebhook
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(StripeWebhookFunction.self)
