import ArgumentParser
import Foundation
import TollgateEmulator

struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What deploy/ is made from.", subcommands: [Render.self])

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render the functions' declarations into Terraform's per-function variables.",
            discussion: "Triggers, topics, schedules, queues, secrets, ports and resources, for deploy/terraform.")

        @Option(help: "Where to write them.")
        var output = TerraformVariables.path

        @Flag(help: "Write nothing; exit 1 when the file differs from what the declarations render.")
        var check = false

        func run() async throws {
            let text = TerraformVariables.text(EmulatedFunction.declarations)
            if check {
                let committed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
                guard committed == text else {
                    FileHandle.standardError.write(Data("\(output) differs from the declarations: run tollgate deploy render\n".utf8))
                    throw ExitCode.failure
                }
                print("\(output) matches the declarations")
                return
            }
            try Data(text.utf8).write(to: URL(fileURLWithPath: output))
            print("wrote \(output)")
        }
    }
}
