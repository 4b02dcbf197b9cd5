import Foundation
import Logging
import Synchronization
import Testing
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

@testable import StripeWebhook

/// Every fixture under `events/` replays green, plainly and with duplicates and a shuffle.
@Suite struct FixtureReplayTests {
    static let fixtures = (try? Fixture.discover([packageRoot.appendingPathComponent("events").path])) ?? []

    @Test func thereAreAtLeast25Fixtures() {
        #expect(Self.fixtures.count >= 25)
    }

    @Test(arguments: fixtures.map(\.name))
    func fixture_passes_plainAndPerturbed(name: String) async throws {
        let entry = try #require(Self.fixtures.first { $0.name == name })
        let directory = scratchURL("replay")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let replayer = try Replayer(
            options: .init(
                duplicates: 3, shuffleSeed: 7, stateDirectory: directory, logger: Logger(label: "replay") { _ in SwiftLogNoOpLogHandler() })
        )
        let result = await replayer.replay(try Fixture(url: entry.url, name: name))
        #expect(result.problems == [])
    }
}
