import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
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
    static let checkoutSecret = String(repeating: "c", count: 32)
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)

    init() async throws {
        database = try temporaryDatabase(clock: FixedClock(time: now))
        let inner = SQLitePublisher(database)
        try await inner.createTopic(Topic.entitlementsChanged)
        publisher = FlakyPublisher(inner)
        let configuration = StripeWebhookFunction.Configuration(
            webhookSecrets: [secret], policy: try BillingPolicy(priceTiersSetting: "price_pro_monthly=pro"),
            checkoutReferences: try CheckoutReferenceSigner(secrets: [Self.checkoutSecret]))
        let store = SQLiteDocumentStore(database)
        host = FunctionHost(
            handler: StripeWebhookFunction(configuration: configuration, store: store, publisher: publisher), store: store,
            clock: FixedClock(time: now), verifier: nil, logger: capturingLogger().0)
    }

    func deliver(_ payload: String, clientReferenceFor accountId: String? = nil) async throws -> FunctionResponse {
        var body = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/\(payload).json"))
        if let accountId {
            // What account-api mints for the account's admin, placed where Checkout puts it.
            var random = SystemRandomNumberGenerator()
            let reference = try CheckoutReferenceSigner(secrets: [Self.checkoutSecret]).mint(accountId: accountId, now: now, using: &random)
            let text = String(decoding: body, as: UTF8.self)
            body = Data(
                text.replacingOccurrences(
                    of: #""client_reference_id": "[^"]*""#, with: "\"client_reference_id\": \"\(reference)\"", options: .regularExpression
                ).utf8)
        }
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

    /// A conflict writes no marker: once a person has resolved it, Stripe's resend of the
    /// same event applies, and the conflict record goes with it.
    @Test func aConflict_isRecordedForAPerson_andTheResendAfterTheFixApplies() async throws {
        publisher.down.withLock { $0 = false }
        let store = SQLiteDocumentStore(database)
        #expect(try await deliver("checkout-session-completed", clientReferenceFor: "org_2TgAcme").status == 200)
        let conflict = try await deliver("checkout-session-completed-other-account", clientReferenceFor: "user_2TgBob")
        #expect(try JSONValue.parse(conflict.body)["outcome"] == .string("conflict"))
        let record = try #require(try await store.get(path("billingConflicts/evt_1TgCheckoutOther")))
        #expect(record.fields["reason"] == .string("customer_linked_elsewhere"))
        #expect(record.fields["linkedAccountId"] == .string("org_2TgAcme"))
        #expect(try await store.get(path("stripeEvents/evt_1TgCheckoutOther")) == nil)
        let again = try await deliver("checkout-session-completed-other-account", clientReferenceFor: "user_2TgBob")
        #expect(try JSONValue.parse(again.body)["outcome"] == .string("conflict"), "a redelivery meets the same conflict")

        // The person decides the customer belongs to the other account: the link is undone.
        _ = try await store.delete(path("stripeCustomers/cus_TgAlpha01"))
        let resent = try await deliver("checkout-session-completed-other-account", clientReferenceFor: "user_2TgBob")
        #expect(try JSONValue.parse(resent.body)["outcome"] == .string("applied"))
        #expect(try await store.get(path("billingConflicts/evt_1TgCheckoutOther")) == nil)
        #expect(try await store.get(path("stripeCustomers/cus_TgAlpha01"))?.fields["accountId"] == .string("user_2TgBob"))
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
