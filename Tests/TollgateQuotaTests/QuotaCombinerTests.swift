import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@testable import TollgateQuota

struct QuotaCombinerTests {
    /// The drain that decides an account's batches is started by one request but outlives
    /// it: a batch of later requests must not inherit the first request's deadline (it
    /// would fail every batch once that deadline passed).
    @Test func eachBatch_runsWithTheLatestDeadlineOfItsOwnRequests_notTheFirstRequests() async throws {
        let seen = Recorder<ContinuousClock.Instant?>()
        let combiner = QuotaCombiner(clock: SystemClock()) { claims, _, _ in
            seen.append(Deadline.current)
            try await Task.sleep(for: .milliseconds(300))
            return claims.map { _ in
                .refused(Account(id: "acct_a", tier: .free, entitlements: TierCatalog.standard.entitlements(for: .free)))
            }
        }
        let claim = QuotaBook.Claim(cost: 1) { _ in true }
        let first = ContinuousClock.now + .seconds(1)
        let later = ContinuousClock.now + .seconds(30)
        async let one = Deadline.$current.withValue(first) { try await combiner.consume(claim, accountId: "acct_a") }
        try await Task.sleep(for: .milliseconds(50))
        async let two = Deadline.$current.withValue(later) { try await combiner.consume(claim, accountId: "acct_a") }
        _ = try await (one, two)
        #expect(seen.all == [first, later])
    }
}
