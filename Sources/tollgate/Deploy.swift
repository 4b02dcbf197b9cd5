import ArgumentParser
import Foundation
import TollgateEmulator

struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What deploy/ is made from.", subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render the functions' declarations into deploy/.",
            discussion: """
                Terraform's per-function variables (triggers, topics, schedules, queues, secrets, each service's whole \
                environment, resources and capabilities) and docs/settings.md (every setting read).
                """)

        @Option(help: "Where to write the Terraform variables.")
        var output = TerraformVariables.path

        @Flag(help: "Write nothing; exit 1 when a file differs from what the declarations render.")
        var check = false

        func run() async throws {
            let declarations = EmulatedFunction.declarations
            let files = [
                (output, TerraformVariables.text(declarations)), (SettingsReference.path, SettingsReference.text(declarations)),
            ]
            if check {
                var differ = false
                for (path, text) in files {
                    if (try? String(contentsOfFile: path, encoding: .utf8)) == text {
                        print("\(path) matches the declarations")
                    } else {
                        FileHandle.standardError.write(Data("\(path) differs from the declarations: run tollgate deploy render\n".utf8))
                        differ = true
                    }
                }
                if differ { throw ExitCode.failure }
                return
            }
            for (path, text) in files {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path))
                print("wrote \(path)")
            }
        }
    }
}
