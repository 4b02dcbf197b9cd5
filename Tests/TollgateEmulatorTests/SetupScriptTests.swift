import Foundation
import Testing
import TollgateEmulator
import TollgateModel
import TollgateTestSupport
import UsageReport

@testable import ClerkWebhook
@testable import StripeWebhook

/// `deploy/setup/stripe.sh` and `clerk.sh` in their dry runs: the calls they would make,
/// checked against what the functions read and act on.
@Suite struct SetupScriptTests {
    static func run(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [packageRoot.appendingPathComponent("deploy/setup/\(script)").path] + arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STRIPE_") }
        let run = try await runToEnd(process, combined: true)
        return (run.status, String(decoding: run.output, as: UTF8.self))
    }

    /// The endpoint sends exactly the events stripe-webhook acts on; the meter maps what
    /// usage-report sends (`payload[stripe_customer_id]`, `payload[value]`, event name
    /// `api_units`); the secret goes to Secret Manager on standard input.
    @Test func stripe_theDryRun_makesTheMeterPriceAndEndpointStripeWebhookAndUsageReportNeed() async throws {
        let (status, output) = try await Self.run("stripe.sh", ["--project", "acme-prod", "--unit-amount-decimal", "0.05", "--dry-run"])
        #expect(status == 0, "\(output)")
        let calls = output.split(separator: "\n").filter { $0.hasPrefix("+ ") }.map(String.init)
        let endpoint = try #require(calls.first { $0.contains("-X POST https://api.stripe.com/v1/webhook_endpoints") })
        let enabled = Set(endpoint.matches(of: /enabled_events\\\[\\\]=([a-z_.]+)/).map { String($0.output.1) })
        let acted = StripeEventApplier.subscriptionTypes.union(StripeEventApplier.invoiceTypes).union(StripeEventApplier.linkTypes)
        #expect(enabled == acted)
        #expect(endpoint.contains("url=https://stripe-webhook-PROJECT_NUMBER.europe-west1.run.app/"))

        let meter = try #require(calls.first { $0.contains("-X POST https://api.stripe.com/v1/billing/meters") })
        #expect(meter.contains("event_name=\(try #require(UsageReportFunction.Settings.meterEventName.defaultValue))"))
        #expect(meter.contains(#"customer_mapping\[event_payload_key\]=stripe_customer_id"#))
        #expect(meter.contains(#"value_settings\[event_payload_key\]=value"#) && meter.contains(#"default_aggregation\[formula\]=sum"#))
        let price = try #require(calls.first { $0.contains("-X POST https://api.stripe.com/v1/prices") })
        #expect(price.contains(#"recurring\[usage_type\]=metered"#) && price.contains(#"recurring\[meter\]=mtr_FROM_STEP_1"#))
        // Every POST can be sent twice without a second object; the key never appears.
        #expect(calls.filter { $0.contains("-X POST") }.allSatisfy { $0.contains("Idempotency-Key") })
        #expect(
            calls.filter { $0.contains("curl") }.allSatisfy { $0.contains(#""user = \"$STRIPE_SECRET_KEY:\"""#) && $0.contains(" -K -") })
        #expect(calls.contains { $0.contains("gcloud secrets versions add tollgate-stripe-webhook-secret --data-file=-") })
    }

    @Test func stripe_refusesToRunWithoutAKeyOrAPrice() async throws {
        let noKey = try await Self.run("stripe.sh", ["--project", "p", "--unit-amount-decimal", "0.05"])
        #expect(noKey.status == 2 && noKey.output.contains("set STRIPE_SECRET_KEY") && !noKey.output.contains("+ "))
        let noPrice = try await Self.run("stripe.sh", ["--project", "p", "--unit-amount-decimal", "five", "--dry-run"])
        #expect(noPrice.status == 2 && noPrice.output.contains("--unit-amount-decimal CENTS is required"))
    }

    @Test func clerk_theDryRun_checksTheIssuersKeys_andNamesEveryEventClerkWebhookActsOn() async throws {
        let (status, output) = try await Self.run(
            "clerk.sh", ["--project", "acme-prod", "--issuer", "https://clerk.acme.dev", "--dry-run"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("+ curl -sS --fail https://clerk.acme.dev/.well-known/jwks.json"))
        let subscribed = try #require(output.split(separator: "\n").first { $0.contains("Subscribe to exactly:") })
        let events = Set(subscribed.split(separator: ":", maxSplits: 1)[1].split(separator: " ").map(String.init))
        #expect(events == ClerkEvent.userTypes.union(ClerkEvent.organizationTypes).union(ClerkEvent.membershipTypes))
        #expect(output.contains("https://clerk-webhook-PROJECT_NUMBER.europe-west1.run.app/"))
        let bad = try await Self.run("clerk.sh", ["--project", "acme-prod", "--issuer", "http://clerk.acme.dev/x", "--dry-run"])
        #expect(bad.status == 2 && bad.output.contains("--issuer is Clerk's frontend API URL"))
    }
}
