import Foundation
import Testing
import TollgateGoogle
import TollgateModel
import TollgateStripe
import TollgateTestSupport

/// A server that accepts and never answers: every outbound call gives up with
/// `DEADLINE_EXCEEDED` when the request's ``Deadline`` passes, instead of waiting its own
/// timeout (60 s for Google, 20 s for Stripe) and then retrying.
@Suite struct DeadlineTests {
    /// Far above the 0.5 s deadline and far below one unbounded attempt.
    static let unbounded: Duration = .seconds(15)

    @Test func aHungFirestore_failsAtTheDeadline_notItsTimeout() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let store = try GoogleCloud(environment: ["FIRESTORE_EMULATOR_HOST": hung.hostAndPort]).firestore("firestore://hung")
        let started = ContinuousClock.now
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) { _ = try await store.get(path("accounts/a")) }
        }
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) {
                try await store.runTransaction { transaction in _ = try await transaction.get(path("accounts/a")) }
            }
        }
        #expect(ContinuousClock.now - started < Self.unbounded)
    }

    @Test func aHungStripe_failsAtTheDeadline_andIsNotRetriedPastIt() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let client = StripeClient(configuration: .init(baseURL: "http://\(hung.hostAndPort)", apiKey: "sk_test_hung"))
        let started = ContinuousClock.now
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) { _ = try await client.customer("cus_1") }
        }
        #expect(ContinuousClock.now - started < Self.unbounded)
    }

    @Test func anEnclosingDeadline_isNeverExtended() async {
        await Deadline.run(within: .milliseconds(100)) {
            let outer = Deadline.current
            await Deadline.run(within: .seconds(60)) { #expect(Deadline.current == outer) }
        }
        #expect(Deadline.current == nil)
    }
}
