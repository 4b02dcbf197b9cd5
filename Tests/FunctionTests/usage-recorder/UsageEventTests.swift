import AuthValidator
import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct UsageEventTests {
    @Test func moreThan150EventsInOneMessage_isPoison() async throws {
        let events = (0...150).map { i in
            JSONValue.object([
                "requestId": .string("r\(i)"), "accountId": .string("a"), "time": .string("2026-01-01T00:00:00Z"),
                "endpoint": .string("/"), "units": .integer(1),
            ])
        }
        let data = Data(JSONValue.array(events).rendered().utf8)
        let now = Timestamp(rfc3339: "2026-01-01T00:05:00Z")!
        await expectCode(.invalidArgument) { try UsageEvents.decode(data, now: now) }
        #expect(try UsageEvents.decode(Data(JSONValue.array(Array(events.prefix(150))).rendered().utf8), now: now).count == 150)
    }
}
