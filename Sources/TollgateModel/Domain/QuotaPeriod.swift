/// How an account's quota windows are laid out.
public enum QuotaPeriod: String, Codable, Sendable, CaseIterable {
    /// Calendar months in UTC: [1st 00:00, next 1st 00:00).
    case month
    /// Calendar days in UTC.
    case day
    /// The account's Stripe billing period (`current_period_start` to `_end`); past its
    /// end, until Stripe reports the next one, month-long steps from that end.
    case billingPeriod = "billing-period"

    /// The window that contains `time`.
    public func window(containing time: Timestamp, billing: BillingState?) -> (start: Timestamp, end: Timestamp) {
        switch self {
        case .day:
            let start = Timestamp(secondsSinceEpoch: time.secondsSinceEpoch - mod(time.secondsSinceEpoch, 86_400))
            return (start, start.adding(seconds: 86_400))
        case .month:
            let (year, month, _) = Timestamp.civil(fromDays: Int(floorDiv(time.secondsSinceEpoch, 86_400)))
            return (Self.monthStart(year, month), Self.monthStart(year, month + 1))
        case .billingPeriod:
            guard let start = billing?.currentPeriodStart, let end = billing?.currentPeriodEnd, start < end, start <= time else {
                return QuotaPeriod.month.window(containing: time, billing: nil)
            }
            var window = (start: start, end: end)
            while window.end <= time { window = (window.end, Self.addingMonth(to: window.end)) }
            return window
        }
    }

    static func monthStart(_ year: Int, _ month: Int) -> Timestamp {
        let y = year + (month - 1) / 12
        let m = (month - 1) % 12 + 1
        return Timestamp(secondsSinceEpoch: Int64(Timestamp.days(fromCivil: y, m, 1)) * 86_400)
    }

    /// The same day of the next month at the same time, clamped to the month's last day,
    /// as Stripe anchors monthly billing cycles.
    static func addingMonth(to time: Timestamp) -> Timestamp {
        let seconds = time.secondsSinceEpoch
        let days = Int(floorDiv(seconds, 86_400))
        let (year, month, day) = Timestamp.civil(fromDays: days)
        let next = Timestamp.days(fromCivil: year + month / 12, month % 12 + 1, 1)
        let (nextYear, nextMonth, _) = Timestamp.civil(fromDays: next)
        let daysInNextMonth = Timestamp.days(fromCivil: nextYear + nextMonth / 12, nextMonth % 12 + 1, 1) - next
        let target = next + min(day, daysInNextMonth) - 1
        return Timestamp(secondsSinceEpoch: Int64(target) * 86_400 + mod(seconds, 86_400))
    }
}

private func mod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
