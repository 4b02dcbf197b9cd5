import ArgumentParser
import Foundation
import TollgateEmulator
import TollgateModel

/// `tollgate new-event KIND [--field name=value …]`: a ready-to-replay fixture.
struct NewEvent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-event",
        abstract: "Write a ready-to-replay fixture for a trigger or a Stripe event, shaped as the real sender sends it.",
        discussion: "Kinds and their fields (defaults in brackets):\n"
            + EventTemplates.kinds.map { kind in
                "  \(kind.name): \(kind.summary)\n      "
                    + kind.fields.map { "\($0.key)[\($0.value)]" }.joined(separator: " ")
            }.joined(separator: "\n"))

    @Argument(help: "The kind of event (see below).")
    var kind: String

    @Option(name: .customLong("field"), help: "A field of the event, as name=value; repeat for several.")
    var fields: [String] = []

    @Option(help: "Write the fixture to this file instead of standard output.")
    var output: String?

    @Option(help: "The recorded Stripe payloads the Stripe kinds start from.")
    var payloads = "events/stripe/payloads"

    func run() async throws {
        let values = try nameValuePairs(fields, option: "--field")
        let fixture: JSONValue
        do {
            fixture = try EventTemplates.fixture(kind: kind, values: values, payloads: URL(fileURLWithPath: payloads))
        } catch let error as TollgateError {
            throw ValidationError(error.message)
        }
        let text = fixture.rendered(pretty: true) + "\n"
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output))
            FileHandle.standardError.write(Data("wrote \(output); replay it with: tollgate replay \(output)\n".utf8))
        } else {
            print(text, terminator: "")
        }
    }
}
