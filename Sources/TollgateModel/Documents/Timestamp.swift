import Foundation

/// A point in time with microsecond precision, as Firestore stores timestamps.
///
/// Held as an integer so that equality, ordering and rendering are exact.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    /// - Precondition: `secondsSinceEpoch` lies within ``earliest``…``latest``; a value from
    ///   outside goes through ``init(unixSeconds:)``, which checks.
    public init(secondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = secondsSinceEpoch * 1_000_000
    }

    /// Firestore's (and protobuf's) range of timestamps: 0001-01-01T00:00:00Z …
    /// 9999-12-31T23:59:59.999999Z. Every time read from outside must lie in it.
    public static let earliest = Timestamp(microsecondsSinceEpoch: -62_135_596_800_000_000)
    public static let latest = Timestamp(microsecondsSinceEpoch: 253_402_300_799_999_999)
    /// The whole seconds of ``earliest``…``latest``: the bounds of a Unix time from outside.
    public static let unixSecondsRange: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    /// A Unix time read from outside (a header, a JSON number, a token claim).
    /// - Returns: nil outside ``unixSecondsRange``, so no later arithmetic can overflow.
    public init?(unixSeconds: Int64) {
        guard Self.unixSecondsRange.contains(unixSeconds) else { return nil }
        self.init(secondsSinceEpoch: unixSeconds)
    }

    public init(_ date: Date) {
        self.microsecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    public var date: Date { Date(timeIntervalSince1970: Double(microsecondsSinceEpoch) / 1_000_000) }
    public var secondsSinceEpoch: Int64 {
        microsecondsSinceEpoch >= 0
            ? microsecondsSinceEpoch / 1_000_000 : (microsecondsSinceEpoch - 999_999) / 1_000_000
    }

    public func adding(microseconds: Int64) -> Timestamp {
        let (sum, overflow) = microsecondsSinceEpoch.addingReportingOverflow(microseconds)
        return Timestamp(microsecondsSinceEpoch: overflow ? (microseconds < 0 ? .min : .max) : sum)
    }

    public func adding(seconds: Int64) -> Timestamp {
        let (micros, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        let (sum, overflowed) = microsecondsSinceEpoch.addingReportingOverflow(micros)
        guard !overflow, !overflowed else { return Timestamp(microsecondsSinceEpoch: seconds < 0 ? .min : .max) }
        return Timestamp(microsecondsSinceEpoch: sum)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    /// RFC 3339 in UTC, with a fraction only when there is one (`2026-01-15T00:00:00Z`,
    /// `2026-01-15T00:00:00.250000Z`): the form Google's APIs emit.
    public var rfc3339: String {
        // RFC 3339 has four-digit years: a time outside years 1–9999 (only ever made by
        // saturating arithmetic) renders clamped rather than trapping on a negative digit.
        guard self >= Self.earliest, self <= Self.latest else { return min(max(self, Self.earliest), Self.latest).rfc3339 }
        let seconds = secondsSinceEpoch
        let micros = Int(microsecondsSinceEpoch - seconds * 1_000_000)
        let (year, month, day) = Self.civil(fromDays: Int(floorDiv(seconds, 86_400)))
        let secondOfDay = Int(seconds - floorDiv(seconds, 86_400) * 86_400)
        // Written digit by digit: exports format millions of these.
        return String(unsafeUninitializedCapacity: 27) { buffer in
            var index = 0
            func digits(_ value: Int, _ width: Int) {
                var value = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    buffer[index + offset] = UInt8(48 + value % 10)
                    value /= 10
                }
                index += width
            }
            func mark(_ ascii: UInt8) {
                buffer[index] = ascii
                index += 1
            }
            digits(year, 4)
            mark(0x2D)
            digits(month, 2)
            mark(0x2D)
            digits(day, 2)
            mark(0x54)
            digits(secondOfDay / 3600, 2)
            mark(0x3A)
            digits(secondOfDay / 60 % 60, 2)
            mark(0x3A)
            digits(secondOfDay % 60, 2)
            if micros != 0 {
                mark(0x2E)
                digits(micros, 6)
            }
            mark(0x5A)
            return index
        }
    }

    public var description: String { rfc3339 }

    /// Parses RFC 3339 (`Z` or a numeric offset, up to nanosecond fractions, truncated to
    /// microseconds). Returns nil for anything else: a date the calendar does not have
    /// (`2026-02-31`), a leap second (Firestore has none), an offset past ±23:59, or an
    /// instant outside ``earliest``…``latest`` (so year 0000 too).
    public init?(rfc3339 text: String) {
        let chars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= chars.count else { return nil }
            var value = 0
            for c in chars[range] {
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard chars.count >= 20, chars[4] == 45, chars[7] == 45, chars[10] == 84 || chars[10] == 116,
            chars[13] == 58, chars[16] == 58,
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day), hour < 24, minute < 60,
            second < 60
        else { return nil }
        var index = 19
        var micros = 0
        if chars[index] == 46 {
            index += 1
            var digits = 0
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int(chars[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            if digits < 6 { for _ in digits..<6 { micros *= 10 } }
        }
        guard index < chars.count else { return nil }
        var offsetSeconds = 0
        if chars[index] == 90 || chars[index] == 122 {
            index += 1
        } else if chars[index] == 43 || chars[index] == 45, index + 6 == chars.count,
            chars[index + 3] == 58, let oh = number(index + 1..<index + 3),
            let om = number(index + 4..<index + 6), oh < 24, om < 60
        {
            offsetSeconds = (oh * 3600 + om * 60) * (chars[index] == 43 ? 1 : -1)
            index += 6
        } else {
            return nil
        }
        guard index == chars.count else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        guard Self.unixSecondsRange.contains(seconds) else { return nil }
        self.microsecondsSinceEpoch = seconds * 1_000_000 + Int64(micros)
    }

    /// The number of days of `month` in the proleptic Gregorian calendar.
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    public static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    a >= 0 ? a / b : (a - b + 1) / b
}

extension Timestamp: Codable {
    /// Outside documents a timestamp is its RFC 3339 string.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let value = Timestamp(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(text)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rfc3339)
    }
}
