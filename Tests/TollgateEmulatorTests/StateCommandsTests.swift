import Foundation
import Logging
import Testing
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageReport

@testable import TollgateEmulator

/// `tollgate dead-letters list|replay`, `state get` and `state diff` on a local state.
@Suite(.serialized) struct StateCommandsTests {
    static let quiet = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }

    /// A usage-report task contradicting a recorded report is dead-lettered; once a person
    /// removes the wrong record, the replay reports it and the letter is gone.
    @Test func deadLetter_replayedAfterTheCauseIsFixed_isHandledAndRemoved_andPoisonStays() async throws {
        let clock = VirtualClock(start: Fixture.defaultStart)
        let database = try temporaryDatabase(clock: clock)
        let ports = Ports(sqlite: database)
        let day = UTCDay("2025-12-30")!
        let reportPath = try DocumentPath(collection: UsageReport.collection, id: UsageReport.id(day: day, accountId: "acct_a"))
        let wrong = UsageReport(
            day: day, accountId: "acct_a", status: "reported", customerId: "cus_a", eventName: "api_units", identifier: "tg-x", value: 5,
            records: 1, reported: clock.now(), attempt: 1)
        try await ports.store.create(reportPath, try FieldValueEncoder().encode(wrong))
        let issuer = try LocalOIDCIssuer()
        let function = try EmulatedFunction.make(
            "usage-report", ports: ports, issuer: issuer, clerk: try LocalOIDCIssuer(keyID: "clerk-local-1"), webhookSecrets: ["current"],
            logger: Self.quiet)
        let senders = Senders(
            issuer: issuer, clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"), function: function.declaration)
        let contradicting: JSONValue = .object([
            "task": .object([
                "name": .string("t1"),
                "body": .object(["day": .string("2025-12-30"), "accountId": .string("acct_a"), "units": .integer(7)]),
            ])
        ])
        #expect(await function.deliver(try senders.request(for: contradicting, delivery: 1)).status == 200)
        let poison: JSONValue = .object(["task": .object(["name": .string("t2"), "raw": .string("{not json")])])
        #expect(await function.deliver(try senders.request(for: poison, delivery: 2)).status == 200)

        let letters = try await DeadLetterReplay.list(ports.store)
        #expect(letters.count == 2)
        let contradiction = try #require(letters.first { $0.letter.reason.contains("reported as 5") })
        let broken = try #require(letters.first { $0.id != contradiction.id })

        // Still contradicted: the replay fails and the letter stays.
        #expect(
            try await DeadLetterReplay.replay(contradiction.id, ports: ports, logger: Self.quiet)
                == .failed(status: 200, reason: "still poison"))
        try await ports.store.delete(reportPath)
        #expect(try await DeadLetterReplay.replay(contradiction.id, ports: ports, logger: Self.quiet) == .resolved(status: 200))
        #expect(try await ports.store.get(reportPath)?.fields["value"] == .integer(7))
        #expect(try await DeadLetterReplay.list(ports.store).map(\.id) == [broken.id])
        if case .failed = try await DeadLetterReplay.replay(broken.id, ports: ports, logger: Self.quiet) {
        } else {
            Issue.record("a body that is not JSON stays poison")
        }
        await expectCode(.notFound) { try await DeadLetterReplay.replay("usage-report-nope", ports: ports, logger: Self.quiet) }

        // The same from the command line.
        let environment = ["TOLLGATE_STORE": "sqlite://\(database.path)", "PATH": "/usr/bin:/bin"]
        let (listed, listing, _) = try await runTollgate(["dead-letters", "list"], environment: environment)
        #expect(listed == 0 && listing.contains(broken.id) && listing.contains("1 dead letter"))
        let (replayed, replayOut, _) = try await runTollgate(["dead-letters", "replay", broken.id], environment: environment)
        #expect(replayed == 1 && replayOut.contains("the dead letter stays"))
    }

    @Test func stateGetAndDiff_showADocument_andWhatChanged() async throws {
        let first = try temporaryDatabase()
        let second = try temporaryDatabase()
        for database in [first, second] {
            try await SQLiteDocumentStore(database).set(path("accounts/a1"), ["tier": .string("pro"), "n": .integer(1)])
        }
        try await SQLiteDocumentStore(second).set(path("accounts/a1"), ["tier": .string("enterprise"), "n": .integer(1)])
        try await SQLiteDocumentStore(second).set(path("accounts/a2"), ["tier": .string("free")])
        let environment = ["PATH": "/usr/bin:/bin"]
        let (got, shown, _) = try await runTollgate(
            ["state", "get", "accounts/a1", "--store", "sqlite://\(first.path)"], environment: environment)
        #expect(got == 0)
        #expect(try JSONValue.parse(Data(shown.utf8))["fields"] == .object(["tier": .string("pro"), "n": .integer(1)]))
        #expect(
            try await runTollgate(["state", "get", "accounts/zz", "--store", "sqlite://\(first.path)"], environment: environment).0 == 1)
        let (same, sameOut, _) = try await runTollgate(["state", "diff", first.path, first.path], environment: environment)
        #expect(same == 0 && sameOut.contains("the same state"))
        let (differ, diff, _) = try await runTollgate(["state", "diff", first.path, second.path], environment: environment)
        #expect(differ == 1)
        #expect(diff.contains(#"~ documents accounts/a1: {"n":1,"tier":"pro"} → {"n":1,"tier":"enterprise"}"#), "\(diff)")
        #expect(diff.contains(#"+ documents accounts/a2: {"tier":"free"}"#))
    }
}
