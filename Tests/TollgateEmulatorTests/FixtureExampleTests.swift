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

/// The fixture example in docs/fixtures.md is a real fixture and passes.
@Suite struct FixtureExampleTests {
    @Test func documentedFixtureExample_replaysGreen() async throws {
        let page = try String(contentsOf: packageRoot.appendingPathComponent("docs/fixtures.md"), encoding: .utf8)
        let blocks = page.components(separatedBy: "```json\n").dropFirst().compactMap { $0.components(separatedBy: "```").first }
        let block = try #require(blocks.first { $0.contains("\"steps\"") }, "docs/fixtures.md shows a fixture")
        // The other JSON examples are at least valid JSON.
        for other in blocks { _ = try JSONValue.parse(Data(other.utf8)) }
        // Place it beside the Stripe fixtures so its payload paths resolve as written.
        let directory = scratchURL("readme")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            at: directory.appendingPathComponent("payloads"),
            withDestinationURL: packageRoot.appendingPathComponent("events/stripe/payloads"))
        let file = directory.appendingPathComponent("readme-example.json")
        try Data(block.utf8).write(to: file)
        let replayer = try Replayer(options: .init(stateDirectory: directory, logger: Logger(label: "r") { _ in SwiftLogNoOpLogHandler() }))
        let result = await replayer.replay(try Fixture(url: file, name: "readme-example.json"))
        #expect(result.problems == [])
        #expect(result.steps == 2)
    }
}
