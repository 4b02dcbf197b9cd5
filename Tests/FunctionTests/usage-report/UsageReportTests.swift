import Foundation
import Logging
import Synchronization
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import UsageReport

/// usage-report sends one account's day to Stripe once: one meter event under an
/// identifier derived from the account, the meter and the day (Stripe deduplicates by
/// it), recorded with the report so a redelivery sends nothing; an account without a
/// Stripe customer is recorded as such; a task that disagrees with what was reported, or
/// that Cloud Tasks will not retry again, goes to a person.
@Suite struct UsageReportTests {
    /// The billing provider: records what it is sent, failing the first `failures` sends.
    final class RecordingBilling: Billing {
        let sent = Mutex<[MeterEvent]>([])
        let failures: Int
        init(failures: Int = 0) { self.failures = failures }
        func report(_ event: MeterEvent) async throws -> MeterEventReceipt {
            let count = sent.withLock { sent in
                sent.append(event)
                return sent.count
            }
            guard count > failures else { throw TollgateError(.unavailable, "Stripe answered 503") }
            return MeterEventReceipt(identifier: event.identifier, livemode: false)
        }
    }

    static let day = UTCDay("2026-01-01")!
    static let now = Timestamp(rfc3339: "2026-01-02T00:40:00Z")!

    func deliver(_ function: UsageReportFunction, _ body: String, retryCount: Int = 0) async throws -> JSONValue {
        // What Cloud Tasks sends.
        let request = FunctionRequest(
            method: "POST", path: "/",
            headers: [
                ("X-CloudTasks-QueueName", "usage-reports"), ("X-CloudTasks-TaskName", "report-20260101-0a1b"),
                ("X-CloudTasks-TaskRetryCount", "\(retryCount)"), ("X-CloudTasks-TaskExecutionCount", "\(retryCount)"),
                ("X-CloudTasks-TaskETA", "\(Self.now.secondsSinceEpoch)"),
            ], body: Data(body.utf8))
        let context = FunctionContext(logger: Logger(label: "usage-report-test"), clock: FixedClock(time: Self.now), request: request)
        let response = try await function.handle(try TaskEvent.decode(request), context: context)
        #expect(response.status == 200)
        return try JSONValue.parse(response.body)
    }

    func setup(billing: RecordingBilling) async throws -> (SQLiteDocumentStore, UsageReportFunction) {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        var account = Account(id: "acct_1", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro))
        account.billing = BillingState(
            customerId: "cus_1", subscriptionId: "sub_1", priceId: "price_pro_monthly", status: .active,
            currentPeriodStart: Self.day.start, currentPeriodEnd: Self.day.start.adding(seconds: 31 * 86_400), cancelAtPeriodEnd: false,
            trialEnd: nil, lastEventCreated: 0, lastEventId: "evt_1")
        try await store.set(try DocumentPath(collection: Account.collection, id: "acct_1"), try FieldValueEncoder().encode(account))
        return (store, UsageReportFunction(store: store, billing: billing))
    }

    @Test func aDay_isSentOnce_underItsIdentifier_atTheDaysLastSecond() async throws {
        let billing = RecordingBilling()
        let (store, function) = try await setup(billing: billing)
        let job = #"{"day": "2026-01-01", "accountId": "acct_1", "units": 42, "records": 7}"#
        let identifier = UsageReportFunction.identifier(accountId: "acct_1", eventName: "api_units", day: Self.day)
        #expect(try await deliver(function, job) == .object(["status": .string("reported"), "identifier": .string(identifier)]))
        #expect(
            billing.sent.withLock { $0 }
                == [
                    MeterEvent(
                        eventName: "api_units", customerId: "cus_1", value: 42, identifier: identifier,
                        timestamp: Timestamp(rfc3339: "2026-01-01T23:59:59Z")!)
                ])
        // Redelivered: nothing is sent again.
        #expect(try await deliver(function, job, retryCount: 1)["status"] == .string("already-reported"))
        #expect(billing.sent.withLock { $0.count } == 1)
        let report = try #require(
            try await store.get(try DocumentPath(collection: UsageReport.collection, id: "2026-01-01_acct_1"))?.decode(UsageReport.self))
        #expect(report.value == 42 && report.records == 7 && report.status == "reported" && report.customerId == "cus_1")
        // A task that disagrees with what was reported is for a person, not a second bill.
        await expectCode(.invalidArgument) {
            _ = try await deliver(function, #"{"day": "2026-01-01", "accountId": "acct_1", "units": 43, "records": 7}"#)
        }
    }

    @Test func noStripeCustomer_isRecorded_andNothingIsSent() async throws {
        let billing = RecordingBilling()
        let (store, function) = try await setup(billing: billing)
        #expect(
            try await deliver(function, #"{"day": "2026-01-01", "accountId": "acct_2", "units": 5, "records": 1}"#)["status"]
                == .string("no-customer"))
        #expect(billing.sent.withLock { $0.isEmpty })
        let report = try await store.get(try DocumentPath(collection: UsageReport.collection, id: "2026-01-01_acct_2"))?.decode(
            UsageReport.self)
        #expect(report?.status == "no-customer")
    }

    @Test func stripeDown_isRetried_untilTheLastAttempt_thenGoesToAPerson() async throws {
        let billing = RecordingBilling(failures: 100)
        let (_, function) = try await setup(billing: billing)
        let job = #"{"day": "2026-01-01", "accountId": "acct_1", "units": 42, "records": 7}"#
        await expectCode(.unavailable) { _ = try await deliver(function, job) }
        await expectCode(.invalidArgument) { _ = try await deliver(function, job, retryCount: UsageReportFunction.maxAttempts - 1) }
    }
}
