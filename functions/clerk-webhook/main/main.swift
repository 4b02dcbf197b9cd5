import ClerkWebhook
import TollgateDrivers
import TollgateRuntime

await FunctionMain.run(ClerkWebhookFunction.self)
