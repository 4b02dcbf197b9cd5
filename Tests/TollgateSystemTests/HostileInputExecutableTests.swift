import Foundation
import Logging
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport
import TollgateTesting

@testable import AuthValidator
@testable import TollgateEmulator
@testable import UsageExport
@testable import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The findings made against the real executables, checked the same way: over loopback,
/// with the process still serving afterwards.
@Suite(.serialized) struct HostileInputExecutableTests {
    /// `Stripe-Signature: t=-9223372036854775807,v1=<64 zeros>` trapped before any
    /// signature check: one unsigned request killed the instance, repeatable forever.
    @Test func stripeWebhook_extremeSignatureTimestamps_are400_andTheProcessLives() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let webhook = try await RunningFunction(
            "stripe-webhook",
            environment: cluster.environment(
                "https://stripe-webhook.test",
                [
                    "STRIPE_WEBHOOK_SECRET": ReliabilityTests.webhookSecret,
                    "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
                    "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
                ]))
        let zeros = String(repeating: "0", count: 64)
        for t in ["-9223372036854775807", "-9223372036854775808", "9223372036854775807", "-1"] {
            let (status, body) = try await post(webhook.url, body: Data("{}".utf8), headers: ["Stripe-Signature": "t=\(t),v1=\(zeros)"])
            #expect(status == 400, "\(String(decoding: body, as: UTF8.self))")
        }
        let event = try #require(try ReliabilityTests.stripeEvents(accounts: 1).first)
        try await ReliabilityTests.deliverSigned(event.body, to: { webhook.url })
        #expect(webhook.process.isRunning)
        #expect(try await cluster.count("stripeEvents") == 1)

        // Metrics are the instance's own business: not on the public port, only on loopback.
        let (publicStatus, publicBody) = try await get(webhook.url.appendingPathComponent("metrics"))
        #expect(publicStatus != 200 && !String(decoding: publicBody, as: UTF8.self).contains("tollgate_"))
        let (metricsStatus, metrics) = try await get(try webhook.metricsURL)
        #expect(metricsStatus == 200 && String(decoding: metrics, as: UTF8.self).contains("tollgate_requests_total"))
        #expect(try await webhook.stop() == 0)
    }

    /// Two events of one account at `units` near Int64.max overflowed the counter sum and
    /// killed each instance the message was redelivered to. Now it is dead-lettered.
    @Test func usageRecorder_extremeUnits_areDeadLettered_andTheProcessLives() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let recorder = try await RunningFunction("usage-recorder", environment: cluster.environment(ReliabilityTests.recorderAudience))
        let now = Timestamp(Date()).rfc3339
        let events: [JSONValue] = (0..<2).map { index in
            .object([
                "requestId": .string("big_\(index)"), "accountId": .string("acct_1"), "time": .string(now), "endpoint": .string("/"),
                "units": .integer(Int64.max - 1),
            ])
        }
        let body = ReliabilityTests.pushBody(events, messageID: 1)
        let (status, _) = try await post(
            recorder.url, body: body,
            headers: ["Authorization": try ReliabilityTests.bearer(ReliabilityTests.recorderAudience), "Content-Type": "application/json"])
        #expect(status == 200, "poison is acknowledged once dead-lettered")
        #expect(try await cluster.count("deadLetters") == 1)
        #expect(try await cluster.count(UsageRecord.collection) == 0)
        let fine = ReliabilityTests.pushBody([events[0].setting(["units"], .integer(7))], messageID: 2)
        try await ReliabilityTests.deliver(fine, to: { recorder.url }, audience: ReliabilityTests.recorderAudience)
        #expect(try await cluster.count(UsageRecord.collection) == 1)
        #expect(try await recorder.stop() == 0)
    }

    /// Through the real auth-validator: a forged endpoint or feature header widens nothing.
    @Test func authValidator_forgedGateHeaders_widenNothing() async throws {
        let cluster = try ReliabilityTests.Cluster()
        let pepper = "pepper-for-the-hostile-input-tests-0123456789"
        let key = try await seedKeyedAccount(SQLiteDocumentStore(cluster.database), id: "acct_ent", units: 100, pepper: pepper)
        let validator = try await RunningFunction(
            "auth-validator",
            environment: [
                "TOLLGATE_STORE": "sqlite://\(cluster.database.path)", "TOLLGATE_KEY_PEPPER": pepper,
                "TOLLGATE_ENDPOINT_FEATURES": "/v1/priority=priorityQueue",
            ])
        for headers in [
            ["X-Original-URI": "/v1/priority", "X-Tollgate-Endpoint": "/"],
            ["X-Original-URI": "/v1/%70riority", "X-Tollgate-Feature": "asyncJobs"],
            ["X-Original-URI": "/V1//./priority?x=1"],
        ] {
            let (status, body) = try await post(validator.url, body: Data(), headers: headers.merging(["X-API-Key": key]) { a, _ in a })
            #expect(status == 403, "\(headers): \(String(decoding: body, as: UTF8.self))")
        }
        #expect(try await post(validator.url, body: Data(), headers: ["X-API-Key": key, "X-Original-URI": "/v1/other"]).0 == 200)
        #expect(try await validator.stop() == 0)
    }
}
