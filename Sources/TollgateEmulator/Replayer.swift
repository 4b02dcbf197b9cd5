import Foundation
import Logging
import TollgateAuth
import TollgateDrivers
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

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
    let clerk: LocalOIDCIssuer
    let stranger: LocalOIDCIssuer

    public init(options: Options) throws {
        self.options = options
        issuer = try LocalOIDCIssuer()
        clerk = try LocalOIDCIssuer(keyID: "clerk-local-1")
        stranger = try LocalOIDCIssuer(keyID: clerk.keyID)
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
        var ports = Ports(sqlite: database)
        // New keys (account-api) from a seed of the fixture's: the same in every replay.
        ports.entropy = SeededEntropy(seed: Self.stableHash(Self.seedName(fixture) + "/entropy"))
        let blobs = FaultyBlobStore(ports.blobs)
        ports.blobs = blobs
        let publisher = SQLitePublisher(database)
        let subscriptions = SQLitePushSubscriptions(database)
        try await PushDispatch.declare(in: database)
        if !fixture.given.isEmpty { try await ports.store.commit(fixture.given.map { Write.set($0.key, $0.value) }) }
        var keys = try await seedKeys(fixture, ports: ports)
        let stripe = StripeFakeServer(database)
        let stripeURL = try await stripe.start(logger: Logger(label: "tollgate.stripe-fake", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { stripe.stop() }
        let queue = SQLiteTaskQueue(database)

        var functions: [String: EmulatedFunction] = [:]
        func function(_ name: String) throws -> EmulatedFunction {
            if let made = functions[name] { return made }
            let made = try EmulatedFunction.make(
                name, ports: ports, issuer: issuer, clerk: clerk, webhookSecrets: fixture.webhookSecrets, quotaPeriod: fixture.quotaPeriod,
                stripeBaseURL: stripeURL, logger: options.logger)
            functions[name] = made
            return made
        }
        func senders(for declaration: FunctionDeclaration) -> Senders {
            Senders(
                issuer: issuer, clock: clock, fixtureDirectory: fixture.url.deletingLastPathComponent(), function: declaration,
                clerk: clerk, stranger: stranger, keys: keys)
        }

        var problems: [String] = []
        var delivery = 0
        var answered: Set<Int> = []
        let retrying = { (step: Fixture.Step) in
            // Controls act on the emulated cloud once; only deliveries are redelivered.
            guard !Self.controls.contains(step.send.objectValue?.keys.first ?? "") else { return false }
            return (try? function(step.function ?? fixture.function))?.declaration.trigger.senderRetries ?? true
        }
        for group in Self.groups(fixture.steps, duplicates: duplicates, seed: seed, repeats: retrying) {
            clock.advance(seconds: group.advance)
            for step in group.steps {
                delivery += 1
                if try await Self.control(step.send, stripe: stripe, blobs: blobs) {
                    problems += try await dispatchTasks(queue, clock: clock, function: function, senders: senders)
                    continue
                }
                let target = try function(step.function ?? fixture.function)
                let response = await target.deliver(try senders(for: target.declaration).request(for: step.send, delivery: delivery))
                if let expected = step.expectedStatus, expected != response.status {
                    let detail = (try? JSONValue.parse(response.body))?["error"]?["message"]?.stringValue.map { " (\($0))" } ?? ""
                    problems.append("step \(step.index): expected status \(expected), got \(response.status)\(detail)")
                }
                // A key account-api made (`http.keyAs`) can be sent by later steps by that ref,
                // and so can a Checkout reference it minted (`http.referenceAs`).
                for (capture, field) in [("keyAs", "key"), ("referenceAs", "clientReferenceId")] {
                    if let ref = step.send["http"]?[capture]?.stringValue,
                        let value = (try? JSONValue.parse(response.body))?[field]?.stringValue
                    {
                        keys[ref] = value
                    }
                }
                // A body describes the first answer to a step; its redeliveries may say "nothing to do".
                if let expected = step.expectedBody, answered.insert(step.index).inserted {
                    let body = try? JSONValue.parse(response.body)
                    problems += Expectation.differences(expected: expected, actual: body, at: "step \(step.index) body")
                }
                // Pub/Sub: what the step published is pushed to every subscription of its topic.
                problems += try await pushDue(subscriptions, clock: clock, function: function, senders: senders)
                problems += try await dispatchTasks(queue, clock: clock, function: function, senders: senders)
            }
        }
        // The instances stop, as Cloud Run scales them to zero: leases of quota go back, so
        // the windows hold what was admitted.
        for made in functions.values { await made.drain() }
        // Push deliveries are keyed by message sequence, which records the order things
        // happened in, not the state: a perturbed replay publishes in another order.
        var state = try await database.stateDump()
        if case .object(var parts) = state {
            parts["pushDeliveries"] = nil
            state = .object(parts)
        }
        let published = try await publisher.published().map { message in
            (
                topic: message.topic,
                data: (try? JSONValue.parse(Data(message.message.data))) ?? .string(String(decoding: message.message.data, as: UTF8.self))
            )
        }
        problems += Expectation.check(fixture.expect, state: state, published: published)
        problems += try await checkExports(fixture.expect, blobs: blobs.base)
        return Run(problems: problems, state: state)
    }

    /// Steps that drive the emulated cloud rather than a function: `tick` (only lets time
    /// pass, so due tasks run) and `stripeOutage` (the Stripe fake fails the next
    /// `requests` calls with `status`). - Returns: whether the step was one.
    /// `blobFaults` (after `after` more blob writes every write fails, as if the writer
    /// were killed, until `heal`) and `tamper` (flips a byte of `object`, as an attacker would).
    static let controls: Set<String> = ["tick", "stripeOutage", "blobFaults", "tamper"]

    static func control(_ send: JSONValue, stripe: StripeFakeServer, blobs: FaultyBlobStore) async throws -> Bool {
        guard let (kind, spec) = send.objectValue?.first else { return false }
        switch kind {
        case "tick": return true
        case "stripeOutage":
            stripe.fail(next: Int(spec["requests"]?.integerValue ?? 1), status: Int(spec["status"]?.integerValue ?? 500))
            return true
        case "blobFaults":
            if spec["heal"]?.boolValue == true { blobs.heal() } else { blobs.fail(after: Int(spec["after"]?.integerValue ?? 0)) }
            return true
        case "tamper":
            guard let name = spec["object"]?.stringValue else { throw TollgateError(.invalidArgument, "tamper needs an object") }
            var object = try await blobs.base.read(name)
            let at = Int(spec["byte"]?.integerValue ?? Int64(object.data.count / 2))
            object.data[min(at, object.data.count - 1)] ^= 0x01
            try await blobs.base.write(name, object.data, contentType: object.contentType, ifGenerationMatch: nil)
            return true
        default: return false
        }
    }

    /// Cloud Tasks: runs every queued task whose time has come, as the queue would (its
    /// headers, an OIDC token, the target's RetryConfig and `Retry-After` on 429/503),
    /// until none is due at the current virtual time.
    private func dispatchTasks(
        _ queue: SQLiteTaskQueue, clock: VirtualClock, function: (String) throws -> EmulatedFunction,
        senders: (FunctionDeclaration) -> Senders
    ) async throws -> [String] {
        var problems: [String] = []
        while true {
            let attempts = try await TaskDispatch.runDue(queue, clock: clock) { queued, declaration, _ in
                try await function(declaration.name).deliver(try senders(declaration).queued(queued))
            }
            if attempts.isEmpty { return problems }
            for attempt in attempts where attempt.function == nil {
                problems.append(
                    "task \(attempt.queued.task.name ?? "") targets \(attempt.queued.task.url), which no Cloud Tasks function serves")
            }
        }
    }

    /// `exportVerification`: what `verify-export` says of each named day, with the
    /// emulator's key as the trusted one.
    private func checkExports(_ expect: JSONValue, blobs: any BlobStore) async throws -> [String] {
        guard let days = expect["exportVerification"]?.objectValue else { return [] }
        let key = try ExportSigner(base64: LocalEnvironment.exportSigningKey).publicKey
        let verifier = ExportVerifier(blobs: blobs, layout: ExportLayout(), trustedKeys: [key])
        var problems: [String] = []
        for (text, expected) in days.sorted(by: { $0.key < $1.key }) {
            guard let day = UTCDay(text) else { throw TollgateError(.invalidArgument, "exportVerification: \(text) is not YYYY-MM-DD") }
            let report = try await verifier.verify(day)
            if report.verdict.rawValue != expected.stringValue {
                problems.append(
                    "verify-export \(day): expected \(expected.rendered()), got \"\(report.verdict.rawValue)\" (\(report.detail))")
            }
        }
        return problems
    }

    /// What a fixture's seeds derive from: its file name alone, so its keys are the same
    /// whichever folder the replay was started from (a fixture may name a key's prefix).
    static func seedName(_ fixture: Fixture) -> String { String(fixture.name.split(separator: "/").last ?? "") }

    /// Creates the fixture's API keys with the real key code; returns them by ref.
    private func seedKeys(_ fixture: Fixture, ports: Ports) async throws -> [String: String] {
        guard !fixture.apiKeys.isEmpty else { return [:] }
        let hasher = try APIKeys(pepper: LocalEnvironment.keyPepper)
        var keys: [String: String] = [:]
        for seed in fixture.apiKeys {
            // Seeded by fixture and ref: the same keys in every replay of the fixture.
            var generator = SeededGenerator(seed: Self.stableHash(Self.seedName(fixture) + "/" + seed.ref))
            let key = APIKeys.generate(mode: APIKeys.Mode(rawValue: seed.mode) ?? .live, using: &generator)
            let record = APIKeyRecord(
                accountId: seed.account, displayPrefix: APIKeys.displayPrefix(of: key), name: seed.ref, created: fixture.start,
                expires: seed.expires, revoked: seed.revoked)
            try await ports.store.create(
                try DocumentPath(collection: APIKeyRecord.collection, id: hasher.hash(key)), try FieldValueEncoder().encode(record))
            keys[seed.ref] = key
        }
        return keys
    }

    /// FNV-1a: stable across processes, unlike `hashValue`.
    static func stableHash(_ text: String) -> UInt64 {
        text.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Pushes what is due, one delivery after another; in a replay every push must be
    /// acknowledged, so a nack is a problem (its redelivery follows the clock, as in the cloud).
    private func pushDue(
        _ subscriptions: SQLitePushSubscriptions, clock: any TollgateModel.Clock, function: (String) throws -> EmulatedFunction,
        senders: (FunctionDeclaration) -> Senders
    ) async throws -> [String] {
        let attempts = try await PushDispatch.runDue(subscriptions, clock: clock) { due, name, path in
            let subscriber = try function(name)
            let request = try senders(subscriber.declaration).push(
                due.message.pubSubMessage, topic: due.subscription.topic, to: subscriber.declaration, path: path,
                deliveryAttempt: due.deliveryAttempt)
            return await subscriber.deliver(request)
        }
        return attempts.compactMap { attempt in
            if let status = attempt.status, PushAcknowledgement.statuses.contains(status) { return nil }
            return
                "push of \(attempt.due.subscription.topic) message \(attempt.due.message.messageId) to \(attempt.function)\(attempt.path)"
                + " answered \(attempt.status.map(String.init) ?? "nothing")"
        }
    }

    struct Group {
        var advance: Int64
        var steps: [Fixture.Step]
    }

    /// Steps in groups: a step that advances the clock starts a new group. Each step whose
    /// sender redelivers (Stripe, Pub/Sub, Tasks, Scheduler) is repeated `duplicates` times
    /// (a gateway's call to auth-validator is a new request each time, never a redelivery)
    /// and, with a seed, each group is shuffled.
    static func groups(
        _ steps: [Fixture.Step], duplicates: Int, seed: UInt64?, repeats: (Fixture.Step) -> Bool = { _ in true }
    ) -> [Group] {
        var groups: [Group] = []
        for step in steps {
            if groups.isEmpty || step.advance > 0 { groups.append(Group(advance: step.advance, steps: [])) }
            groups[groups.count - 1].steps += Array(repeating: step, count: repeats(step) ? max(1, duplicates) : 1)
        }
        guard let seed else { return groups }
        var generator = SeededGenerator(seed: seed)
        return groups.map { Group(advance: $0.advance, steps: $0.steps.shuffled(using: &generator)) }
    }
}
