import Foundation
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateModel
import TollgateStripe
import TollgateTestSupport

/// The real executables on a Firestore that accepts and never answers: each answers 503
/// (for its sender to retry) within what its sender waits, with `DEADLINE_EXCEEDED` in its
/// log line, instead of holding the request through the driver's 60 s timeout and retries.
@Suite(.serialized) struct HungStoreTests {
    static func environment(_ hung: HungServer) -> [String: String] {
        ["TOLLGATE_STORE": "firestore://hung", "FIRESTORE_EMULATOR_HOST": hung.hostAndPort]
    }

    static func validator(on hung: HungServer) async throws -> RunningFunction {
        try await RunningFunction(
            "auth-validator",
            environment: environment(hung).merging(["TOLLGATE_KEY_PEPPER": "pepper-for-the-hung-store-test-0123456789"]) { $1 })
    }

    /// Whether the process logs `text` within a few seconds (its output arrives through a pipe).
    static func logs(_ function: RunningFunction, contain text: String) async -> Bool {
        for _ in 0..<100 {
            if function.lines.all.contains(where: { $0.contains(text) }) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test func authValidator_onAHungStore_answers503_beforeTheGatewayGivesUp() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let validator = try await Self.validator(on: hung)
        let started = ContinuousClock.now
        let (status, _) = try await post(validator.url, body: Data(), headers: ["X-API-Key": APIKeys.generate(mode: .test)])
        let waited = ContinuousClock.now - started
        #expect(status == 503)
        // The deadline is 1.5 s, the nginx recipe waits 2 s; an unbounded call waits 60 s.
        #expect(waited < .seconds(15), "\(waited)")
        #expect(await Self.logs(validator, contain: "DEADLINE_EXCEEDED"), "\(validator.log)")
        #expect(try await validator.stop() == 0)
    }

    /// Calls waiting on a hung store must not queue behind each other for threads, or the
    /// later ones start their deadline late.
    @Test func authValidator_onAHungStore_answersManyConcurrentRequests_eachWithinItsDeadline() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let validator = try await Self.validator(on: hung)
        let url = validator.url
        let waits = try await withThrowingTaskGroup(of: (Int, Duration).self) { group in
            for _ in 0..<24 {
                group.addTask {
                    let started = ContinuousClock.now
                    let (status, _) = try await post(
                        url, body: Data(), headers: ["X-API-Key": APIKeys.generate(mode: .test)], session: unqueuedSession)
                    return (status, ContinuousClock.now - started)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(waits.allSatisfy { $0.0 == 503 })
        let longest = waits.map(\.1).max() ?? .zero
        // With a blocking transfer per thread, the last of 24 answered after 6-7.5 s.
        #expect(longest < .seconds(4), "\(waits.map(\.1).sorted())")
        #expect(try await validator.stop() == 0)
    }

    @Test func stripeWebhook_onAHungStore_answers503_forStripeToRetry() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let secret = "whsec_hung_store_local_value_only"
        let webhook = try await RunningFunction(
            "stripe-webhook",
            environment: Self.environment(hung).merging([
                "STRIPE_WEBHOOK_SECRET": secret, "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
                "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
            ]) { $1 })
        let body = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-pro.json"))
        let signature = StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let (status, _) = try await post(webhook.url, body: body, headers: ["Stripe-Signature": signature])
        #expect(status == 503)
        #expect(await Self.logs(webhook, contain: "DEADLINE_EXCEEDED"), "\(webhook.log)")
        #expect(try await webhook.stop() == 0)
    }
}
