import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@Suite struct TimestampTests {
    @Test func rfc3339_roundTripsWholeSecondsAndMicroseconds() {
        #expect(Timestamp(secondsSinceEpoch: 1_767_225_600).rfc3339 == "2026-01-01T00:00:00Z")
        let precise = Timestamp(microsecondsSinceEpoch: 1_767_225_600_250_001)
        #expect(precise.rfc3339 == "2026-01-01T00:00:00.250001Z")
        #expect(Timestamp(rfc3339: precise.rfc3339) == precise)
    }

    @Test func rfc3339_acceptsOffsetsAndNanoseconds_truncatingToMicroseconds() {
        #expect(Timestamp(rfc3339: "2026-01-01T01:00:00+01:00") == Timestamp(secondsSinceEpoch: 1_767_225_600))
        #expect(Timestamp(rfc3339: "2014-10-02T15:01:23.045123456Z")?.microsecondsSinceEpoch == 1_412_262_083_045_123)
    }

    @Test(arguments: ["", "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00Zjunk"])
    func rfc3339_refusesMalformedText(_ text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test func beforeTheEpoch_rendersCorrectly() {
        #expect(Timestamp(microsecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
    }
}
