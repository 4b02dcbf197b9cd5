import ArgumentParser
import Foundation
import Logging
import TollgateDrivers
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// `--store`: an existing local state file (else `TOLLGATE_STORE`, else the default).
struct LocalState: ParsableArguments {
    @Option(help: "A sqlite: URL (default: TOLLGATE_STORE, else sqlite://.tollgate/state.db).")
    var store: String?

    func open() throws -> SQLiteDatabase { try openLocalState(store) }

    /// The URL the command works on.
    var url: String { store ?? (try? Environment().required(Ports.Settings.store)) ?? Ports.defaultStoreURL }

    var isLocal: Bool { url.hasPrefix("sqlite:") }

    /// Any store the drivers open (`sqlite:` or `firestore://`, with the environment's
    /// emulator host or credentials), for the commands an operator runs on production.
    func openStore() async throws -> any DocumentStore { try await openPorts().store }

    /// The ports on `url`: the local state's, or those the environment's URLs name beside
    /// a cloud store (as a function's service opens them).
    func openPorts() async throws -> Ports {
        guard isLocal else {
            var environment = Environment().values
            environment[Ports.Settings.store.name] = url
            do { return try await Ports.open(environment: Environment(environment)) } catch let error as ConfigurationError {
                throw ValidationError(error.description)
            }
        }
        return Ports(sqlite: try open())
    }
}

func openLocalState(_ store: String?) throws -> SQLiteDatabase {
    let url = store ?? (try? Environment().required(Ports.Settings.store)) ?? Ports.defaultStoreURL
    let path: String
    do { path = try SQLiteDatabase.path(fromURL: url) } catch { throw ValidationError("\(url) is not a sqlite: URL") }
    guard path == ":memory:" || FileManager.default.fileExists(atPath: path) else { throw ValidationError("no state at \(path)") }
    return try SQLiteDatabase(path: path)
}

extension State {
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one document (its fields as plain JSON, and its times).")

        @Argument(help: "The document path, such as accounts/acct_1.")
        var path: String

        @OptionGroup var state: LocalState

        func run() async throws {
            let documentPath: DocumentPath
            do { documentPath = try DocumentPath(path) } catch let error as TollgateError { throw ValidationError(error.message) }
            guard let snapshot = try await state.openStore().get(documentPath) else {
                FileHandle.standardError.write(Data("no document \(path)\n".utf8))
                throw ExitCode.failure
            }
            let shown: JSONValue = .object([
                "path": .string(path), "createTime": .string(snapshot.createTime.rfc3339),
                "updateTime": .string(snapshot.updateTime.rfc3339), "fields": FieldValue.map(snapshot.fields).plainJSON,
            ])
            print(shown.rendered(pretty: true))
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two state files: what one has that the other has not, and what differs. Exits 1 when they differ.")

        @Argument(help: "The first state (a sqlite: URL or a file path).")
        var first: String

        @Argument(help: "The second state.")
        var second: String

        func run() async throws {
            func dump(_ location: String) async throws -> JSONValue {
                try await openLocalState(location.hasPrefix("sqlite:") ? location : "sqlite://\(location)").stateDump()
            }
            let differences = StateDiff.compare(try await dump(first), try await dump(second))
            for line in differences { print(line) }
            if differences.isEmpty {
                print("the same state")
            } else {
                throw ExitCode.failure
            }
        }
    }
}

/// The differences between two state dumps, one line each, in a stable order.
enum StateDiff {
    static func compare(_ a: JSONValue, _ b: JSONValue) -> [String] {
        var lines: [String] = []
        for section in ["documents", "objects", "tasks", "stripeMeterEvents"] {
            let left = a[section]?.objectValue ?? [:]
            let right = b[section]?.objectValue ?? [:]
            for key in Set(left.keys).union(right.keys).sorted() {
                switch (left[key], right[key]) {
                case (let x?, nil): lines.append("- \(section) \(key): \(x.rendered())")
                case (nil, let y?): lines.append("+ \(section) \(key): \(y.rendered())")
                case (let x?, let y?) where x != y: lines.append("~ \(section) \(key): \(x.rendered()) → \(y.rendered())")
                default: break
                }
            }
        }
        return lines
    }
}

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List, show and replay the poison inputs the functions set aside, on any store.",
        subcommands: [List.self, Show.self, Replay.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead letter, oldest first.")

        @OptionGroup var state: LocalState

        func run() async throws {
            let entries = try await DeadLetterReplay.list(try await state.openStore())
            for entry in entries {
                print(
                    "\(entry.id)  \(entry.letter.received.rfc3339)  \(entry.letter.trigger)  \(entry.letter.body.count) bytes  \(entry.letter.reason)"
                )
            }
            print("\(entries.count) dead letter\(entries.count == 1 ? "" : "s")")
            // What Pub/Sub itself gave up on (tollgate serve's dead-letter topics): publish
            // it again to its topic once the cause is fixed. (In Google Cloud: the
            // `*-dead-letter-hold` subscriptions, see deploy/README.md.)
            guard state.url.hasPrefix("sqlite:") else { return }
            let forwarded = try await SQLitePublisher(try state.open()).published().filter { $0.topic.hasSuffix("-dead-letter") }
            for message in forwarded {
                let attributes = message.message.attributes
                print(
                    "\(message.topic)/\(message.messageId)  \(message.publishTime.rfc3339)  from \(attributes["CloudPubSubDeadLetterSourceSubscription"] ?? "?") after \(attributes["CloudPubSubDeadLetterSourceDeliveryCount"] ?? "?") deliveries  \(message.message.data.count) bytes"
                )
            }
            if !forwarded.isEmpty {
                print(
                    "\(forwarded.count) message\(forwarded.count == 1 ? "" : "s") in Pub/Sub dead-letter topics (publish again with tollgate publish)"
                )
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one dead letter: why, when, its headers and its body (UTF-8 text, else base64).")

        @Argument(help: "The dead letter's id (from `dead-letters list`).")
        var id: String

        @OptionGroup var state: LocalState

        func run() async throws {
            let letter: DeadLetter
            do { letter = try await DeadLetterReplay.letter(id, in: try await state.openStore()) } catch let error as TollgateError
                where error.code == .notFound
            {
                throw ValidationError(error.message)
            }
            print("id:        \(id)")
            print("function:  \(letter.function) (\(letter.trigger))")
            print("received:  \(letter.received.rfc3339)")
            print("reason:    \(letter.reason)")
            for (name, value) in letter.metadata.sorted(by: { $0.key < $1.key }) { print("\(name): \(value)") }
            print("body (\(letter.body.count) bytes):")
            if let text = String(validating: letter.body, as: UTF8.self) {
                print(text)
            } else {
                print(letter.body.base64EncodedString())
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver a dead letter's body to its function again, as its sender would; on success the letter is removed.",
            discussion: """
                On local state the function is rebuilt with the emulator's stand-in secrets. On
                any other store (firestore://) it is rebuilt in this process from the
                environment, which must hold the function's service settings and secrets as
                Cloud Run gives them (sm:// references are read from Secret Manager), and the
                ports' URLs (TOLLGATE_BLOBS, TOLLGATE_PUBSUB, TOLLGATE_TASKS) it uses.
                """)

        @Argument(help: "The dead letter's id (from `dead-letters list`).")
        var id: String

        @OptionGroup var state: LocalState

        func run() async throws {
            let ports = try await state.openPorts()
            let outcome: DeadLetterReplay.Outcome
            do {
                outcome = try await DeadLetterReplay.replay(
                    id, ports: ports, settings: state.isLocal ? .local : .service(Environment()),
                    logger: Logger(label: "tollgate") { _ in SwiftLogNoOpLogHandler() })
            } catch let error as TollgateError {
                throw ValidationError(error.message)
            } catch let error as ConfigurationError {
                throw ValidationError("the function cannot start from this environment: \(error.description)")
            }
            switch outcome {
            case .resolved(let status):
                print("\(id): handled (\(status)); the dead letter is removed")
            case .failed(let status, let reason):
                print("\(id): not handled (\(status)): \(reason); the dead letter stays")
                throw ExitCode.failure
            }
        }
    }
}
