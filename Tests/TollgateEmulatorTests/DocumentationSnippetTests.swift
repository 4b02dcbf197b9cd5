import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// A shell block of the README, a page under `docs/`, a function's or an example's README.
struct DocumentationSnippet: CustomTestStringConvertible, Sendable {
    /// The file, relative to the package root, and the line of the opening fence.
    let file: String
    let line: Int
    let script: String
    /// Why the block is not run here, from its fence: ```` ```sh no-test: REASON ````.
    let notRunBecause: String?

    var testDescription: String { "\(file):\(line)" }

    static let files: [String] = {
        let manager = FileManager.default
        let docs = ((try? manager.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("docs").path)) ?? [])
            .filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
        let functions = ((try? manager.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("functions").path)) ?? [])
            .map { "functions/\($0)/README.md" }
        let examples = ((try? manager.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("examples").path)) ?? [])
            .map { "examples/\($0)/README.md" }
        return (["README.md", "deploy/README.md"] + docs + functions + examples).filter {
            manager.fileExists(atPath: packageRoot.appendingPathComponent($0).path)
        }.sorted()
    }()

    static let all: [DocumentationSnippet] = files.flatMap { file in
        let text = (try? String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)) ?? ""
        return parse(text, file: file)
    }

    static var runnable: [DocumentationSnippet] { all.filter { $0.notRunBecause == nil } }

    /// Fenced blocks whose info string starts with `sh`, `bash` or `shell`, indented or not
    /// (a block inside a list item keeps its indentation).
    static func parse(_ text: String, file: String) -> [DocumentationSnippet] {
        var snippets: [DocumentationSnippet] = []
        // The fence being read: a shell block collects its lines, any other is skipped.
        var open: (line: Int, indent: Int, info: String, shell: Bool, body: [String])?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let trimmed = line.drop { $0 == " " }
            let indent = line.count - trimmed.count
            guard var block = open else {
                if trimmed.hasPrefix("```") {
                    let info = String(trimmed.dropFirst(3))
                    let language = info.split(separator: " ").first.map(String.init) ?? ""
                    open = (index + 1, indent, info, ["sh", "bash", "shell"].contains(language), [])
                }
                continue
            }
            if trimmed.hasPrefix("```") {
                if block.shell {
                    let reason = block.info.range(of: "no-test:").map {
                        String(block.info[$0.upperBound...]).trimmingCharacters(in: .whitespaces)
                    }
                    snippets.append(
                        DocumentationSnippet(
                            file: file, line: block.line, script: block.body.joined(separator: "\n"), notRunBecause: reason))
                }
                open = nil
            } else {
                block.body.append(String(line.dropFirst(min(block.indent, indent))))
                open = block
            }
        }
        return snippets
    }
}

/// Every shell snippet in the README and under `docs/` runs as written, so none can rot.
/// Each runs in a scratch folder that sees the package's files (state it writes, like
/// `.tollgate/`, stays in the scratch folder), with `swift run PRODUCT` standing for the
/// product the test run has already built (SwiftPM holds the build folder while tests
/// run) and `swift build` for nothing. Servers a snippet starts in the background are
/// killed when it ends. A block that cannot run here says why in its fence.
@Suite(.serialized) struct DocumentationSnippetTests {
    @Test func theDocumentationHasSnippets_andEachSkippedOneSaysWhy() {
        #expect(DocumentationSnippet.runnable.count >= 6, "found \(DocumentationSnippet.runnable.map(\.testDescription))")
        for snippet in DocumentationSnippet.all where snippet.notRunBecause != nil {
            #expect((snippet.notRunBecause ?? "").count >= 12, "\(snippet.testDescription): say why it is not run")
        }
    }

    @Test func everyRelativeLink_namesAFileThatExists() throws {
        let link = /\]\(([^)#:\s]+)(#[^)]*)?\)/
        for file in DocumentationSnippet.files {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
            let folder = packageRoot.appendingPathComponent(file).deletingLastPathComponent()
            for match in text.matches(of: link) {
                let target = folder.appendingPathComponent(String(match.output.1)).standardizedFileURL
                #expect(FileManager.default.fileExists(atPath: target.path), "\(file) links to \(match.output.1), which does not exist")
                // A heading named by its anchor (as GitHub makes them) must exist too.
                if let fragment = match.output.2, target.pathExtension == "md",
                    let linked = try? String(contentsOf: target, encoding: .utf8)
                {
                    let anchors = Set(linked.split(separator: "\n").filter { $0.hasPrefix("#") }.map { Self.anchor(of: String($0)) })
                    #expect(
                        anchors.contains(String(fragment.dropFirst())), "\(file) links to \(match.output.1)\(fragment), no such heading")
                }
            }
        }
    }

    /// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces as hyphens.
    static func anchor(of heading: String) -> String {
        let title = heading.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces).lowercased()
        return String(title.compactMap { $0 == " " ? "-" : ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : nil })
    }

    @Test(arguments: DocumentationSnippet.runnable)
    func snippet_runsAsWritten(_ snippet: DocumentationSnippet) async throws {
        let folder = scratchURL("snippet")
        let manager = FileManager.default
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        for entry in try manager.contentsOfDirectory(atPath: packageRoot.path) where ![".tollgate", ".git"].contains(entry) {
            try manager.createSymbolicLink(
                at: folder.appendingPathComponent(entry), withDestinationURL: packageRoot.appendingPathComponent(entry))
        }
        // `swift` on PATH is a shim that execs the built product, so a snippet's background
        // `swift run tollgate serve &` is the server itself, and the EXIT trap ends it: SIGTERM
        // first, so it exits as it should and removes its published keys' folder, then
        // SIGKILL for what is still running 5 s later.
        let bin = folder.appendingPathComponent(".snippet-bin")
        try manager.createDirectory(at: bin, withIntermediateDirectories: true)
        let shim = bin.appendingPathComponent("swift")
        let products = productURL("tollgate").deletingLastPathComponent().path
        try Data(
            """
            #!/bin/bash
            case "$1" in
                run) shift; product="$1"; shift; exec "\(products)/$product" "$@" ;;
                build) exit 0 ;;
                *) echo "a snippet ran swift $1" >&2; exit 64 ;;
            esac

            """.utf8
        ).write(to: shim)
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: shim.path)
        let prelude = """
            set -euo pipefail
            trap 'for job in $(jobs -p); do kill "$job" 2>/dev/null || true; done; for _ in $(seq 50); do [ -z "$(jobs -pr)" ] && break; sleep 0.1; done; jobs -p | xargs -r kill -9 2>/dev/null || true' EXIT
            trap 'exit 143' TERM

            """
        let script = folder.appendingPathComponent("snippet.sh")
        try Data((prelude + snippet.script + "\n").utf8).write(to: script)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path]
        process.currentDirectoryURL = folder
        let inherited = ProcessInfo.processInfo.environment
        process.environment = ["PATH": bin.path + ":" + (inherited["PATH"] ?? "/usr/bin:/bin"), "HOME": folder.path, "LANG": "C.UTF-8"]
        let output = folder.appendingPathComponent("output.txt")
        _ = manager.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Waits by sleeping the task, never the thread: a blocked thread of the cooperative
        // pool (as many as cores) would stall every other test of the run meanwhile.
        var status = try await process.exitStatus(within: .seconds(180))
        let timedOut = status == nil
        if timedOut {
            // SIGTERM first: the shell's EXIT trap then kills what the snippet started.
            process.terminate()
            status = try await process.exitStatus(within: .seconds(5))
            if status == nil {
                kill(process.processIdentifier, SIGKILL)
                status = try await process.exitStatus(within: .seconds(60))
            }
        }
        try handle.close()
        let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(!timedOut, "\(snippet.testDescription) ran over 180 s:\n\(printed.suffix(2_000))")
        #expect(status == 0, "\(snippet.testDescription) exited \(String(describing: status)):\n\(printed.suffix(2_000))")
    }
}
