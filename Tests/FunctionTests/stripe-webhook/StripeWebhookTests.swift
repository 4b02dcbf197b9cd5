import Foundation
import Logging
import Synchronization
import Testing
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

@testable import StripeWebhook

/// A publisher that is down until told otherwise.
final class FlakyPublisher: Publisher {
    let inner: SQLitePublisher
    let down = Mutex(true)
    init(_ inner: SQLitePublisher) { self.inner = inner }
    func publish(_ message: OutgoingMessage, to topic: String) async throws -> String {
        if down.withLock({ $0 }) { throw TollgateError(.unavailable, "Pub/Sub is unreachable") }
        return try await inner.publish(message, to: topic)
    }
}

@Suite struct StripeWebhookTests {
    let database: SQLiteDatabase
    let publisher: FlakyPublisher
    let host: FunctionHost<StripeWebhookFunction>
    let secret = "whsec_test_unit_secret_value"
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)

    init() async throws {
        database = try temporaryDatabase(clock: FixedClock(time: now))
        let inner = SQLitePublisher(database)
        try await inner.createTopic(Topic.entitlementsChanged)
        publisher = FlakyPublisher(inner)
        let configuration = StripeWebhookFunction.Configuration(
            webhookSecrets: [secret], policy: try BillingPolicy(priceTiersSetting: "price_pro_monthly=pro"))
        let store = SQLiteDocumentStore(database)
        host = FunctionHost(
            handler: StripeWebhookFunction(configuration: configuration, store: store, publisher: publisher), store: store,
            clock: FixedClock(time: now), verifier: nil, logger: capturingLogger().0)
    }

    func deliver(_ payload: String) async throws -> FunctionResponse {
        let body = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/\(payload).json"))
        let header = StripeSigner(secret: secret).header(timestamp: now.secondsSinceEpoch, body: body)
        return await host.handle(
            FunctionRequest(method: "POST", path: "/", headers: [(name: "Stripe-Signature", value: header)], body: body))
    }

    @Test func publishFailureAfterCommit_answers503_andTheRedeliveryPublishesOnce() async throws {
        let first = try await deliver("subscription-created-pro")
        #expect(first.status == 503, "Stripe must retry: the message is not out yet")
        let account = try await SQLiteDocumentStore(database).get(path("accounts/cus_TgAlpha01"))
        #expect(account?.fields["tier"] == .string("pro"), "the account and its marker are committed")
        #expect(try await publisher.inner.published().isEmpty)

        publisher.down.withLock { $0 = false }
        let retry = try await deliver("subscription-created-pro")
        #expect(retry.status == 200)
        #expect(try await publisher.inner.published().count == 1)
        #expect(try await SQLiteDocumentStore(database).get(path("outbox/evt_1TgSubCreatedPro")) == nil)
        _ = try await deliver("subscription-created-pro")
        #expect(try await publisher.inner.published().count == 1, "a later duplicate publishes nothing more")
    }

    @Test func configuration_refusesSecretsThatAreNotWebhookSecrets_withoutEchoingThem() {
        let environment = Environment(["STRIPE_WEBHOOK_SECRET": "sk_live_notawebhooksecret", "TOLLGATE_PRICE_TIERS": "price_a=pro"])
        do {
            _ = try StripeWebhookFunction.Configuration(environment: environment)
            Issue.record("accepted an API key as the webhook secret")
        } catch let error as ConfigurationError {
            #expect(error.setting == "STRIPE_WEBHOOK_SECRET")
            #expect(!error.description.contains("sk_live"))
        } catch { Issue.record("\(error)") }
    }

    @Test(arguments: ["price_a=platinum", "price_a", "prod_a=pro"])
    func configuration_refusesMalformedPriceTiers(setting: String) {
        let environment = Environment(["STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdef", "TOLLGATE_PRICE_TIERS": setting])
        #expect(throws: ConfigurationError.self) { try StripeWebhookFunction.Configuration(environment: environment) }
    }

    @Test func ties_breakTheSameWayInEitherOrder() throws {
        let object: JSONValue = .object([:])
        func event(_ id: String, _ type: String) throws -> StripeEvent {
            try StripeEvent(
                json: Data(
                    JSONValue.object([
                        "id": .string(id), "object": .string("event"), "type": .string(type), "created": .integer(100),
                        "data": .object(["object": object]),
                    ]).rendered().utf8))
        }
        let update = try event("evt_b", "customer.subscription.updated")
        let delete = try event("evt_a", "customer.subscription.deleted")
        #expect(StripeEventApplier.isNewer(delete, than: (100, "evt_b", false)))
        #expect(!StripeEventApplier.isNewer(update, than: (100, "evt_a", true)))
    }
}
