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
    var url: String { store ?? Environment()["TOLLGATE_STORE"] ?? Ports.defaultStoreURL }

    /// Any store the drivers open (`sqlite:` or `firestore://`, with the environment's
    /// emulator host or credentials), for the commands an operator runs on production.
    func openStore() async throws -> any DocumentStore {
        guard url.hasPrefix("sqlite:") else {
            var environment = Environment().values
            environment["TOLLGATE_STORE"] = url
            return try await Ports.open(environment: Environment(environment)).store
        }
        return SQLiteDocumentStore(try open())
    }
}

func openLocalState(_ store: String?) throws -> SQLiteDatabase {
    let url = store ?? Environment()["TOLLGATE_STORE"] ?? Ports.defaultStoreURL
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
            guard let snapshot = try await SQLiteDocumentStore(try state.open()).get(documentPath) else {
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
        abstract: "List the poison inputs the functions set aside (on any store), and replay them (on the local state).",
        subcommands: [List.self, Replay.self])

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

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver a dead letter's body to its function again, as its sender would; on success the letter is removed.")

        @Argument(help: "The dead letter's id (from `dead-letters list`).")
        var id: String

        @OptionGroup var state: LocalState

        func run() async throws {
            let ports = Ports(sqlite: try state.open())
            let outcome: DeadLetterReplay.Outcome
            do {
                outcome = try await DeadLetterReplay.replay(
                    id, ports: ports, logger: Logger(label: "tollgate") { _ in SwiftLogNoOpLogHandler() })
            } catch let error as TollgateError {
                throw ValidationError(error.message)
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
