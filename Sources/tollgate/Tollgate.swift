import ArgumentParser
import Foundation
import Logging
import TollgateDrivers
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateSQLite

@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Tollgate's developer tool: replay fixtures, run the local cloud, inspect state, keys, exports, reconciliation and retention.",
        subcommands: [
            Replay.self, Serve.self, Publish.self, Trigger.self, ClockCommand.self, Outage.self, Session.self, State.self, Keys.self,
            Export.self,
            VerifyExport.self, VerifyReceipt.self, Reconcile.self, CleanupCommand.self, NewEvent.self, DeadLetters.self, Deploy.self,
            Simulate.self,
        ])
}

/// Repeated `name=value` options (`--field`, `--attribute`) as a dictionary.
/// - Throws: `ValidationError` naming `option` for an entry without a name or `=`.
func nameValuePairs(_ entries: [String], option: String) throws -> [String: String] {
    var pairs: [String: String] = [:]
    for entry in entries {
        guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
            throw ValidationError("\(option) takes name=value, not '\(entry)'")
        }
        pairs[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
    }
    return pairs
}

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay fixtures through the real functions on fresh SQLite state and check their expectations.")

    @Argument(help: "Fixture files or folders (default: events).")
    var paths: [String] = ["events"]

    @Option(help: "Deliver each step K times; the final state must equal the plain replay's.")
    var duplicates: Int = 1

    @Option(help: "Reorder independent steps with this seed; the final state must equal the plain replay's.")
    var shuffle: UInt64?

    @Option(help: "Folder for each fixture's state file.")
    var stateDirectory = ".tollgate/replay"

    @Flag(help: "Print the functions' log lines.")
    var verbose = false

    func validate() throws {
        guard (1...20).contains(duplicates) else { throw ValidationError("--duplicates takes 1 to 20") }
    }

    func run() async throws {
        // The functions' lines as the deployed runtime renders them (secrets redacted).
        var logger = Logger(label: "tollgate-replay") { CloudLoggingHandler(label: $0, format: .text, project: nil) }
        logger.logLevel = verbose ? .info : .critical
        let options = Replayer.Options(
            duplicates: duplicates, shuffleSeed: shuffle, stateDirectory: URL(fileURLWithPath: stateDirectory), logger: logger)
        try FileManager.default.createDirectory(at: options.stateDirectory, withIntermediateDirectories: true)
        let replayer = try Replayer(options: options)
        var passed = 0
        var failed = 0
        for (url, name) in try Fixture.discover(paths) {
            let result: Replayer.Result
            do {
                result = await replayer.replay(try Fixture(url: url, name: name))
            } catch {
                result = Replayer.Result(name: name, steps: 0, problems: ["\(error)"])
            }
            if result.passed {
                passed += 1
                print("PASS \(name) (\(result.steps) step\(result.steps == 1 ? "" : "s"))")
            } else {
                failed += 1
                print("FAIL \(name)")
                for problem in result.problems { print("     \(problem)") }
            }
        }
        print("\(passed) passed, \(failed) failed")
        if failed > 0 || passed == 0 { throw ExitCode.failure }
    }
}

struct State: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the state of TOLLGATE_STORE.", subcommands: [Dump.self, Get.self, Diff.self])

    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the whole state (documents, objects, tasks) as sorted JSON.")

        @OptionGroup var state: LocalState

        func run() async throws {
            print(try await state.open().stateDump().rendered(pretty: true))
        }
    }
}
