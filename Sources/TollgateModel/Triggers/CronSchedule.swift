import Foundation

/// A Cloud Scheduler schedule: unix-cron's five fields (minute, hour, day of month,
/// month, day of week) read in a time zone. Fields take `*`, numbers, ranges `a-b`,
/// steps `*/n` and `a-b/n`, lists, and month and day names (`JAN`, `MON`); Sunday is 0
/// or 7. As in cron, when both day fields are restricted a day matching either runs.
/// <https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules>
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public let timeZone: TimeZone
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    /// - Throws: `INVALID_ARGUMENT` naming the field that cannot be read, or the zone.
    public init(_ expression: String, timeZone identifier: String = "Etc/UTC") throws {
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw TollgateError(.invalidArgument, "schedule '\(expression)' needs five fields: minute hour day-of-month month day-of-week")
        }
        guard let zone = TimeZone(identifier: identifier) else {
            throw TollgateError(.invalidArgument, "unknown time zone '\(identifier)'")
        }
        description = expression
        timeZone = zone
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = try Self.field(fields[1], "hour", 0...23)
        daysOfMonth = try Self.field(fields[2], "day of month", 1...31)
        months = try Self.field(fields[3], "month", 1...12, names: Self.monthNames)
        daysOfWeek = Set(try Self.field(fields[4], "day of week", 0...7, names: Self.dayNames).map { $0 % 7 })
        dayOfMonthRestricted = fields[2] != "*"
        dayOfWeekRestricted = fields[4] != "*"
    }

    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        .enumerated().reduce(into: [String: Int]()) { $0[$1.element] = $1.offset + 1 }
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        .enumerated().reduce(into: [String: Int]()) { $0[$1.element] = $1.offset }

    static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String: Int] = [:]) throws -> Set<Int> {
        func value(_ token: Substring) throws -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let named = names[token.uppercased()] { return named }
            throw TollgateError(.invalidArgument, "\(name) '\(text)': '\(token)' is not in \(range.lowerBound)-\(range.upperBound)")
        }
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(pieces.count) else { throw TollgateError(.invalidArgument, "\(name) '\(text)' has a bad step") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else {
                    throw TollgateError(.invalidArgument, "\(name) '\(text)' has a bad step")
                }
                step = parsed
            }
            let bounds: ClosedRange<Int>
            if pieces[0] == "*" {
                bounds = range
            } else if let dash = pieces[0].firstIndex(of: "-") {
                let low = try value(pieces[0][..<dash])
                let high = try value(pieces[0][pieces[0].index(after: dash)...])
                guard low <= high else { throw TollgateError(.invalidArgument, "\(name) '\(text)': \(low) is after \(high)") }
                bounds = low...high
            } else {
                let start = try value(pieces[0])
                // `5/15` means from 5 to the end in steps of 15, as in cron.
                bounds = pieces.count == 2 ? start...range.upperBound : start...start
            }
            values.formUnion(stride(from: bounds.lowerBound, through: bounds.upperBound, by: step))
        }
        return values
    }

    /// The first run strictly after `time`.
    public func next(after time: Timestamp) -> Timestamp {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Start at the next whole minute.
        var date = Date(timeIntervalSince1970: Double((time.secondsSinceEpoch / 60 + 1) * 60))
        // At most a few years of skipping; a schedule like `0 0 31 2 *` never runs.
        for _ in 0..<100_000 {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: date)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                let weekday = parts.weekday
            else { break }
            if !months.contains(month) {
                date = calendar.date(from: DateComponents(year: parts.year, month: month + 1, day: 1)) ?? date
                continue
            }
            if !matchesDay(day: day, weekday: weekday - 1) {
                date = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: date)) ?? date
                continue
            }
            if !hours.contains(hour) {
                let top = calendar.date(from: DateComponents(year: parts.year, month: month, day: day, hour: hour)) ?? date
                date = top.addingTimeInterval(3_600)
                continue
            }
            if !minutes.contains(minute) {
                date = date.addingTimeInterval(60)
                continue
            }
            return Timestamp(secondsSinceEpoch: Int64(date.timeIntervalSince1970))
        }
        return Timestamp(secondsSinceEpoch: Int64.max / 1_000_000)
    }

    func matchesDay(day: Int, weekday: Int) -> Bool {
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        case (true, false): daysOfMonth.contains(day)
        case (false, true): daysOfWeek.contains(weekday)
        case (false, false): true
        }
    }
}
