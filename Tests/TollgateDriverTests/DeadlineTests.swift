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

    @Test func aHungFirestore_failsAtTheDeadline_notItsTimeout() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let store = try GoogleCloud(environment: ["FIRESTORE_EMULATOR_HOST": hung.hostAndPort]).firestore("firestore://hung")
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) { _ = try await store.get(path("accounts/a")) }
        }
        // One attempt, cut short: no retry starts after the deadline (unbounded: five of 60 s).
        #expect(hung.connections == 1)
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) {
                try await store.runTransaction { transaction in _ = try await transaction.get(path("accounts/a")) }
            }
        }
        #expect(hung.connections == 2, "beginTransaction, cut short, and nothing after it")
    }

    @Test func aHungStripe_failsAtTheDeadline_andIsNotRetriedPastIt() async throws {
        let hung = try HungServer()
        defer { hung.stop() }
        let client = StripeClient(configuration: .init(baseURL: "http://\(hung.hostAndPort)", apiKey: "sk_test_hung"))
        await expectCode(.deadlineExceeded) {
            try await Deadline.run(within: .milliseconds(500)) { _ = try await client.customer("cus_1") }
        }
        #expect(hung.connections == 1, "no retry after the deadline (unbounded: three of 20 s)")
    }

    @Test func anEnclosingDeadline_isNeverExtended() async {
        await Deadline.run(within: .milliseconds(100)) {
            let outer = Deadline.current
            await Deadline.run(within: .seconds(60)) { #expect(Deadline.current == outer) }
        }
        #expect(Deadline.current == nil)
    }
}
