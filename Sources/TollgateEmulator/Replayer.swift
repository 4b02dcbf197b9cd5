import Foundation
import Logging
import TollgateDrivers
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// Replays fixtures through the real runtime and handlers on fresh SQLite state, and
/// checks what each one expects. With duplicates or a shuffle seed, each fixture runs a
/// second time perturbed, and its final state must equal the plain run's byte for byte.
public struct Replayer: Sendable {
    public struct Options: Sendable {
        public var duplicates: Int
        public var shuffleSeed: UInt64?
        /// Where each fixture's state file goes (`.tollgate/replay` by default).
        public var stateDirectory: URL
        public var logger: Logger

        public init(duplicates: Int = 1, shuffleSeed: UInt64? = nil, stateDirectory: URL, logger: Logger) {
            self.duplicates = duplicates
            self.shuffleSeed = shuffleSeed
            self.stateDirectory = stateDirectory
            self.logger = logger
        }

        var perturbed: Bool { duplicates > 1 || shuffleSeed != nil }
    }

    public struct Result: Sendable {
        public var name: String
        public var steps: Int
        public var problems: [String]
        public var passed: Bool { problems.isEmpty }

        public init(name: String, steps: Int, problems: [String]) {
            self.name = name
            self.steps = steps
            self.problems = problems
        }
    }

    let options: Options
    let issuer: LocalOIDCIssuer

    public init(options: Options) throws {
        self.options = options
        issuer = try LocalOIDCIssuer()
    }

    public func replay(_ fixture: Fixture) async -> Result {
        do {
            let plain = try await run(fixture, duplicates: 1, seed: nil, suffix: "")
            var problems = plain.problems
            if options.perturbed {
                let perturbed = try await run(fixture, duplicates: options.duplicates, seed: options.shuffleSeed, suffix: ".perturbed")
                problems += perturbed.problems.filter { $0.hasPrefix("step") }.map { "perturbed: \($0)" }
                if perturbed.state != plain.state {
                    problems += ["final state differs from the plain replay:"] + Expectation.stateDifferences(plain.state, perturbed.state)
                }
            }
            return Result(name: fixture.name, steps: fixture.steps.count, problems: problems)
        } catch {
            return Result(name: fixture.name, steps: fixture.steps.count, problems: ["could not replay: \(error)"])
        }
    }

    private struct Run {
        var problems: [String]
        var state: JSONValue
    }

    private func run(_ fixture: Fixture, duplicates: Int, seed: UInt64?, suffix: String) async throws -> Run {
        let file = options.stateDirectory.appendingPathComponent(
            fixture.name.replacingOccurrences(of: "/", with: "--").replacingOccurrences(of: ".json", with: "") + suffix + ".db")
        for extra in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file.path + extra) }
        let clock = VirtualClock(start: fixture.start)
        let database = try SQLiteDatabase(path: file.path, clock: clock)
        let ports = Ports(sqlite: database)
        let publisher = SQLitePublisher(database)
        for topic in Topic.all { try await publisher.createTopic(topic) }
        if !fixture.given.isEmpty { try await ports.store.commit(fixture.given.map { Write.set($0.key, $0.value) }) }

        let function = try EmulatedFunction.make(
            fixture.function, ports: ports, issuer: issuer, webhookSecrets: fixture.webhookSecrets, logger: options.logger)
        let senders = Senders(
            issuer: issuer, clock: clock, fixtureDirectory: fixture.url.deletingLastPathComponent(), function: function.declaration)

        var problems: [String] = []
        var delivery = 0
        for group in Self.groups(fixture.steps, duplicates: duplicates, seed: seed) {
            clock.advance(seconds: group.advance)
            for step in group.steps {
                delivery += 1
                let response = await function.deliver(try senders.request(for: step.send, delivery: delivery))
                if let expected = step.expectedStatus, expected != response.status {
                    let detail = (try? JSONValue.parse(response.body))?["error"]?["message"]?.stringValue.map { " (\($0))" } ?? ""
                    problems.append("step \(step.index): expected status \(expected), got \(response.status)\(detail)")
                }
            }
        }
        let state = try await database.stateDump()
        let published = try await publisher.published().map { message in
            (
                topic: message.topic,
                data: (try? JSONValue.parse(Data(message.message.data))) ?? .string(String(decoding: message.message.data, as: UTF8.self))
            )
        }
        problems += Expectation.check(fixture.expect, state: state, published: published)
        return Run(problems: problems, state: state)
    }

    struct Group {
        var advance: Int64
        var steps: [Fixture.Step]
    }

    /// Steps in groups: a step that advances the clock starts a new group. Each step is
    /// repeated `duplicates` times and, with a seed, each group is shuffled.
    static func groups(_ steps: [Fixture.Step], duplicates: Int, seed: UInt64?) -> [Group] {
        var groups: [Group] = []
        for step in steps {
            if groups.isEmpty || step.advance > 0 { groups.append(Group(advance: step.advance, steps: [])) }
            groups[groups.count - 1].steps += Array(repeating: step, count: max(1, duplicates))
        }
        guard let seed else { return groups }
        var generator = SeededGenerator(seed: seed)
        return groups.map { Group(advance: $0.advance, steps: $0.steps.shuffled(using: &generator)) }
    }
}
