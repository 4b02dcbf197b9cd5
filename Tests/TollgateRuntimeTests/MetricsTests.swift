import Foundation
import Logging
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

@testable import StripeWebhook

/// `GET /metrics` serves Prometheus' text format: deliveries by trigger and outcome,
/// latency histograms, dead letters, and the handler's own counters.
@Suite struct MetricsTests {
    @Test func metrics_countDeliveriesByOutcome_latency_deadLetters_andWebhookEvents() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        let secret = "whsec_metrics_test"
        let handler = StripeWebhookFunction(
            configuration: .init(
                webhookSecrets: [secret], policy: try BillingPolicy(priceTiersSetting: LocalEnvironment.priceTiers),
                checkoutReferences: try CheckoutReferenceSigner(secrets: [LocalEnvironment.checkoutSecrets["current"]!])),
            store: store, publisher: SQLitePublisher(try temporaryDatabase()))
        let host = FunctionHost(
            handler: handler, store: store, clock: SystemClock(), verifier: nil,
            logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let event = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/customer-created.json"))
        func signed(_ body: Data) -> FunctionRequest {
            let header = StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
            return FunctionRequest(method: "POST", path: "/", headers: [("Stripe-Signature", header)], body: body)
        }
        #expect(await host.handle(signed(event)).status == 200)
        #expect(await host.handle(signed(event)).status == 200)
        #expect(await host.handle(FunctionRequest(method: "POST", path: "/", headers: [], body: event)).status == 400)
        #expect(await host.handle(signed(Data("not json".utf8))).status == 200, "poison from Stripe is dead-lettered")

        let response = host.metricsResponse(FunctionRequest(method: "GET", path: "/metrics", headers: [], body: Data()))
        #expect(response.status == 200)
        #expect(response.headers["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(decoding: response.body, as: UTF8.self)
        func value(_ series: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        let labels = #"function="stripe-webhook",trigger="http""#
        #expect(value(#"tollgate_requests_total{\#(labels),outcome="ok"}"#) == 2)
        #expect(value(#"tollgate_requests_total{\#(labels),outcome="rejected"}"#) == 1)
        #expect(value(#"tollgate_requests_total{\#(labels),outcome="dead_lettered"}"#) == 1)
        #expect(value(#"tollgate_dead_letters_total{function="stripe-webhook"}"#) == 1)
        #expect(value(#"tollgate_request_duration_seconds_count{\#(labels)}"#) == 4)
        #expect(text.contains(#"tollgate_request_duration_seconds_bucket{\#(labels),le="0.005"}"#))
        #expect(text.contains("tollgate_webhook_events_total{type=\"customer.created\""), "\(text)")
        #expect(text.contains("tollgate_webhook_signatures_refused_total{reason="), "the unsigned request is counted with its reason")
        // Health and metrics requests are not deliveries: they are not counted.
        let again = String(
            decoding: host.metricsResponse(FunctionRequest(method: "GET", path: "/metrics", headers: [], body: Data())).body, as: UTF8.self)
        #expect(again.contains(#"tollgate_requests_total{\#(labels),outcome="ok"} 2"#))
    }
}
