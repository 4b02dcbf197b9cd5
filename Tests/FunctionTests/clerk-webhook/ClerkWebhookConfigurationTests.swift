import ClerkWebhook
import Foundation
import Testing
import TollgateModel
import TollgateRuntime

@Suite struct ClerkWebhookConfigurationTests {
    let secret = "whsec_" + Data("clerk-webhook-configuration-test".utf8).base64EncodedString()

    @Test func oneOrTwoSvixSecrets_areAccepted() throws {
        let two = try ClerkWebhookFunction.Configuration(environment: Environment(["CLERK_WEBHOOK_SECRET": "\(secret),\(secret)"]))
        #expect(two.webhookSecrets.count == 2)
        #expect(two.tolerance == 300)
    }

    /// A Stripe secret, a Clerk API key or a secret without base64 is refused at start-up,
    /// and the refusal never repeats the value.
    @Test(arguments: ["sk_live_notawebhooksecret", "whsec_not base64!", "whsec_c2hvcnQ=", "a,b,c"])
    func configuration_refusesWhatIsNotASvixSecret_withoutEchoingIt(value: String) {
        do {
            _ = try ClerkWebhookFunction.Configuration(environment: Environment(["CLERK_WEBHOOK_SECRET": value]))
            Issue.record("accepted \(value.prefix(8))… as a Svix secret")
        } catch let error as ConfigurationError {
            #expect(error.setting == "CLERK_WEBHOOK_SECRET")
            #expect(!error.description.contains(value))
        } catch { Issue.record("\(error)") }
    }

    @Test func aMissingSecret_stopsStartUp() {
        #expect(throws: ConfigurationError.self) { try ClerkWebhookFunction.Configuration(environment: Environment([:])) }
    }
}
