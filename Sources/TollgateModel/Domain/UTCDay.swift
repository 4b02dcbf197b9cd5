/// A calendar day in UTC, written `YYYY-MM-DD`: the unit of exports and usage reports.
public struct UTCDay: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// Days since 1970-01-01.
    public let daysSinceEpoch: Int

    public init(daysSinceEpoch: Int) { self.daysSinceEpoch = daysSinceEpoch }

    /// The day `time` falls on.
    public init(containing time: Timestamp) {
        daysSinceEpoch = Int(floorDiv(time.secondsSinceEpoch, 86_400))
    }

    /// Parses `YYYY-MM-DD`; nil for anything else, including impossible dates.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        let days = Timestamp.days(fromCivil: year, month, day)
        // 2026-02-30 would normalise to March: refuse it instead.
        guard Timestamp.civil(fromDays: days) == (year, month, day) else { return nil }
        daysSinceEpoch = days
    }

    public var start: Timestamp { Timestamp(secondsSinceEpoch: Int64(daysSinceEpoch) * 86_400) }
    /// The first instant of the next day (exclusive end).
    public var end: Timestamp { next.start }
    public var next: UTCDay { UTCDay(daysSinceEpoch: daysSinceEpoch + 1) }
    public var previous: UTCDay { UTCDay(daysSinceEpoch: daysSinceEpoch - 1) }

    public var description: String {
        let (year, month, day) = Timestamp.civil(fromDays: daysSinceEpoch)
        return "\(Hex.padded(year, width: 4))-\(Hex.padded(month, width: 2))-\(Hex.padded(day, width: 2))"
    }

    /// `YYYY/MM/DD`, for object names that list by prefix.
    public var pathComponent: String { description.replacingOccurrences(of: "-", with: "/") }

    public static func < (a: UTCDay, b: UTCDay) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let day = UTCDay(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a YYYY-MM-DD day: \(text)")
        }
        self = day
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
