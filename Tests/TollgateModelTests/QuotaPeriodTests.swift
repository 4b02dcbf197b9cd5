import Foundation
import Synchronization
import Testing
import TollgateModel
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct QuotaPeriodTests {
    func at(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }

    @Test func month_windowsAreCalendarMonthsInUTC() {
        let (start, end) = QuotaPeriod.month.window(containing: at("2026-12-31T23:59:59Z"), billing: nil)
        #expect(start == at("2026-12-01T00:00:00Z"))
        #expect(end == at("2027-01-01T00:00:00Z"))
    }

    /// The one rule every reader of windows uses: the stored window up to (not at) its end,
    /// then the period's window containing now, empty, at the entitlements' limit; idle
    /// months are skipped.
    @Test func currentWindow_isTheStoredOneUntilItsEnd_thenTheNextEmptyOne() {
        let account = Account(id: "acct_w", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro))
        let stored = QuotaWindow(start: at("2026-01-01T00:00:00Z"), end: at("2026-02-01T00:00:00Z"), limit: 10, used: 7)
        #expect(QuotaWindow.current(stored, account: account, period: .month, now: at("2026-01-31T23:59:59.999999Z")) == stored)
        #expect(stored.hasEnded(at: at("2026-02-01T00:00:00Z")))
        let next = QuotaWindow.current(stored, account: account, period: .month, now: at("2026-04-10T12:00:00Z"))
        #expect(next == QuotaWindow(start: at("2026-04-01T00:00:00Z"), end: at("2026-05-01T00:00:00Z"), limit: 15_000, used: 0))
        #expect(
            QuotaWindow.current(nil, account: account, period: .day, now: at("2026-04-10T12:00:00Z")).start == at("2026-04-10T00:00:00Z"))
    }

    @Test func day_windowsAreUTCDays() {
        let (start, end) = QuotaPeriod.day.window(containing: at("2026-03-08T01:30:00Z"), billing: nil)
        #expect(start == at("2026-03-08T00:00:00Z"))
        #expect(end == at("2026-03-09T00:00:00Z"))
    }

    @Test func billingPeriod_pastItsEnd_stepsByMonthsAnchoredOnTheDay_clampedToShortMonths() {
        let billing = BillingState(
            customerId: "c", subscriptionId: "s", priceId: nil, status: .active, currentPeriodStart: at("2027-12-31T09:00:00Z"),
            currentPeriodEnd: at("2028-01-31T09:00:00Z"), cancelAtPeriodEnd: false, trialEnd: nil, lastEventCreated: 0, lastEventId: "e")
        #expect(
            QuotaPeriod.billingPeriod.window(containing: at("2028-01-10T00:00:00Z"), billing: billing) == (
                at("2027-12-31T09:00:00Z"), at("2028-01-31T09:00:00Z")
            ))
        let leap = QuotaPeriod.billingPeriod.window(containing: at("2028-02-10T00:00:00Z"), billing: billing)
        #expect(leap == (at("2028-01-31T09:00:00Z"), at("2028-02-29T09:00:00Z")), "2028 is a leap year")
        #expect(QuotaPeriod.billingPeriod.window(containing: at("2026-01-10T00:00:00Z"), billing: nil).start == at("2026-01-01T00:00:00Z"))
    }

    @Test func upgradeRaisesTheLimitAtOnce_downgradeWaitsForTheNextWindow() {
        let window = QuotaWindow(start: at("2026-01-01T00:00:00Z"), end: at("2026-02-01T00:00:00Z"), limit: 15_000, used: 10)
        let free = TierCatalog.standard.entitlements(for: .free)
        let enterprise = TierCatalog.standard.entitlements(for: .enterprise)
        #expect(window.effectiveLimit(entitlements: enterprise) == 1_000_000)
        #expect(window.effectiveLimit(entitlements: free) == 15_000)
    }
}
