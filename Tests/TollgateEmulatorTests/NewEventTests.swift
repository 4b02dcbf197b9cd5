import Foundation
import Logging
import Testing
import TollgateEmulator
import TollgateModel
import TollgateTestSupport

/// `tollgate new-event` writes fixtures that replay, for every kind it knows.
@Suite(.serialized) struct NewEventTests {
    static let payloads = packageRoot.appendingPathComponent("events/stripe/payloads")

    static func replay(_ fixture: JSONValue, name: String) async throws -> Replayer.Result {
        let directory = scratchURL("new-event")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("\(name).json")
        try Data(fixture.rendered(pretty: true).utf8).write(to: file)
        let replayer = try Replayer(options: .init(stateDirectory: directory, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }))
        return await replayer.replay(try Fixture(url: file, name: name))
    }

    @Test(arguments: EventTemplates.kinds.map(\.name))
    func everyKind_withItsDefaults_replaysAndIsAccepted(kind: String) async throws {
        let fixture = try EventTemplates.fixture(kind: kind, values: [:], payloads: Self.payloads)
        let result = try await Self.replay(fixture, name: kind)
        #expect(result.passed, "\(result.problems)")
    }

    @Test func stripeKinds_changeWhatTheFieldsSay_andKeepStripesShape() async throws {
        let fixture = try EventTemplates.fixture(
            kind: "subscription.updated", values: ["customer": "cus_9", "price": "price_enterprise_monthly", "account": "acct_9"],
            payloads: Self.payloads)
        let event = try #require(fixture["steps"]?.arrayValue?.first?["send"]?["stripe"]?["event"])
        #expect(event["type"] == .string("customer.subscription.updated") && event["object"] == .string("event"))
        #expect(event["api_version"] != nil, "the recorded payload's API version stays")
        let subscription = try #require(event["data"]?["object"])
        #expect(subscription["customer"] == .string("cus_9"))
        #expect(subscription["metadata"]?["tollgate_account_id"] == .string("acct_9"))
        #expect(subscription["items"]?["data"]?.arrayValue?.first?["price"]?["id"] == .string("price_enterprise_monthly"))
        var replayed = fixture
        if case .object(var root) = replayed {
            root["expect"] = .object(["documents": .object(["accounts/acct_9": .object(["tier": .string("enterprise")])])])
            replayed = .object(root)
        }
        let result = try await Self.replay(replayed, name: "sub-updated")
        #expect(result.passed, "\(result.problems)")
    }

    @Test func unknownKindsFieldsAndBadValues_areRefusedByName() async throws {
        #expect(throws: TollgateError.self) { try EventTemplates.fixture(kind: "charge.refunded", values: [:], payloads: Self.payloads) }
        #expect(throws: TollgateError.self) {
            try EventTemplates.fixture(kind: "usage", values: ["colour": "red"], payloads: Self.payloads)
        }
        #expect(throws: TollgateError.self) { try EventTemplates.fixture(kind: "usage", values: ["units": "-1"], payloads: Self.payloads) }
        #expect(throws: TollgateError.self) {
            try EventTemplates.fixture(
                kind: "scheduler", values: ["function": "quota-reset", "day": "2026-01-01"], payloads: Self.payloads)
        }
        let (status, _, errors) = try await runTollgate(
            ["new-event", "usage", "--field", "colour=red"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(status == 64 && errors.contains("usage has no field colour"))
        let (unnamed, _, why) = try await runTollgate(["new-event", "usage", "--field", "=red"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(unnamed == 64 && why.contains("--field takes name=value, not '=red'"))
    }

    @Test func theCommand_writesAFixtureTheReplayPasses() async throws {
        let directory = scratchURL("new-event-cli")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("task.json").path
        let (made, _, _) = try await runTollgate(
            ["new-event", "task", "--field", "units=7", "--output", file, "--payloads", Self.payloads.path],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(made == 0)
        let (replayed, output, _) = try await runTollgate(
            ["replay", file, "--state-directory", directory.appendingPathComponent("state").path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(replayed == 0 && output.contains("1 passed, 0 failed"), "\(output)")
    }
}
