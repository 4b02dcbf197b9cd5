import Foundation
import Testing
import TollgateTestSupport

/// A `tollgate` command line the documentation shows: in a code span or a shell block.
struct DocumentedCommand: CustomTestStringConvertible, Sendable {
    let file: String
    /// The words after `tollgate`, brackets of optional parts removed.
    let words: [String]

    var testDescription: String { "\(file): tollgate \(words.joined(separator: " "))" }

    /// Subcommand paths it names: `dead-letters list|show` names two.
    var paths: [[String]] {
        var paths: [[String]] = [[]]
        for word in words.prefix(while: { $0.firstMatch(of: /^[a-z][a-z|-]*$/) != nil }) {
            paths = paths.flatMap { path in word.split(separator: "|").map { path + [String($0)] } }
        }
        return paths
    }

    /// The options it uses, without their values.
    var options: [String] {
        words.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=").first ?? "") }
    }

    static let all: [DocumentedCommand] = {
        var found: [String: DocumentedCommand] = [:]
        for file in DocumentationSnippet.files {
            let text = (try? String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)) ?? ""
            // Code spans, one line or wrapped over two.
            var lines = text.matches(of: /`tollgate ([^`]+)`/).map { String($0.output.1) }
            // Shell blocks: a command run by name, by `swift run` or from the build folder.
            for snippet in DocumentationSnippet.parse(text, file: file) {
                for line in snippet.script.split(separator: "\n") {
                    if let match = line.firstMatch(of: /(?:^|[\s;&|(])(?:swift run |\.build\/debug\/)?tollgate ([^#;&|)]+)/) {
                        lines.append(String(match.output.1))
                    }
                }
            }
            for line in lines {
                let words = line.replacing(/[\[\]]/, with: "").split(whereSeparator: \.isWhitespace).map(String.init)
                let command = DocumentedCommand(file: file, words: words)
                found[command.testDescription] = command
            }
        }
        return found.values.sorted { $0.testDescription < $1.testDescription }
    }()
}

/// Every `tollgate` command the README, the runbook and the pages under `docs/` show is
/// one the command line has, with options it takes: a renamed subcommand or option fails
/// here, not in an operator's shell during an incident. (The runbook's commands are run
/// end to end by OperatorCommandsOnFirestoreTests.)
@Suite struct DocumentedCommandTests {
    @Test func theDocumentationShowsCommands_theRunbooksAmongThem() {
        let runbook = DocumentedCommand.all.filter { $0.file == "deploy/README.md" }.flatMap(\.paths)
        #expect(runbook.contains(["dead-letters", "list"]) && runbook.contains(["dead-letters", "replay"]), "\(runbook)")
        #expect(DocumentedCommand.all.count >= 25, "found \(DocumentedCommand.all.map(\.testDescription))")
    }

    @Test(arguments: DocumentedCommand.all)
    func documentedCommand_namesASubcommand_andOptionsItTakes(_ command: DocumentedCommand) async throws {
        for path in command.paths {
            let (status, help, errors) = try await runTollgate(path + ["--help"], environment: [:])
            #expect(status == 0, "tollgate \(path.joined(separator: " ")) --help: \(errors)")
            // ArgumentParser's usage line names the subcommand the words reached; a word it
            // took for an argument instead (`replay events`) is one the usage does not name.
            let usage = help.split(separator: "\n").first { $0.hasPrefix("USAGE: tollgate") } ?? ""
            let reached = usage.split(separator: " ").dropFirst(2).prefix { $0.firstMatch(of: /^[a-z][a-z-]*$/) != nil }.map(String.init)
            #expect(path.starts(with: reached) && !reached.isEmpty || path.isEmpty, "\(command.testDescription): usage is '\(usage)'")
            // A word short of the path is an argument only where no subcommand could be meant.
            #expect(
                reached.count == path.count || !help.contains("SUBCOMMANDS:"),
                "\(command.testDescription): tollgate \(reached.joined(separator: " ")) has no subcommand \(path[reached.count...].first ?? "")"
            )
            let options = Set(help.matches(of: /--[a-z0-9][a-z0-9-]*/).map { String($0.output) })
            for option in command.options {
                #expect(options.contains(option), "\(command.testDescription): tollgate \(reached.joined(separator: " ")) has no \(option)")
            }
        }
    }
}
