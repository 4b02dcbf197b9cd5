import Foundation
import Logging
import Testing
import TollgateDrivers
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// `serve` runs the functions at production sizes, replays at sizes that make a few
/// fixture records exercise paging and multi-part exports.
@Suite struct EmulatedFunctionProfileTests {
    @Test(arguments: [(EmulatedFunction.Profile.replay, 3), (.cloud, 1)])
    func usageExport_ofTwelveRecords_writesPartsOfTheProfilesSize(profile: EmulatedFunction.Profile, parts: Int) async throws {
        let day = UTCDay("2026-01-01")!
        let clock = VirtualClock(start: day.end.adding(seconds: 86_400))
        let database = try temporaryDatabase(clock: clock)
        let ports = Ports(sqlite: database)
        try await seedLedger(ports.store, day: day, count: 12)
        let issuer = try LocalOIDCIssuer()
        let function = try EmulatedFunction.make(
            "usage-export", ports: ports, issuer: issuer, clerk: try LocalOIDCIssuer(keyID: "clerk-local-1"), webhookSecrets: [],
            profile: profile, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let senders = Senders(
            issuer: issuer, clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"), function: function.declaration)
        let answer = await function.deliver(try senders.request(for: JSONValue.object(["scheduler": .object([:])]), delivery: 1))
        #expect(answer.status == 200)
        let names = try await ports.blobs.list(prefix: ExportLayout().directory(day), pageSize: 100, pageToken: nil).names
        #expect(names.filter { $0.contains("/part-") }.count == parts, "\(names)")
    }
}
