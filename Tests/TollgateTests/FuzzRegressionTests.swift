import Foundation
import Testing
import TollgateFuzzTargets

/// Every input a fuzz target ever crashed on, and every seed, replayed through the plain
/// build of `tollgate-fuzz`: a fixed crash stays fixed.
@Suite struct FuzzRegressionTests {
    static let targets = ["pubsub-envelope", "cloudevent", "stripe-signature", "stripe-event", "jwt", "fixture"]

    static func inputs(_ target: String) -> [String] {
        var folders = ["Tests/Fuzz/seeds/\(target)", "Tests/Fuzz/regressions/\(target)"]
        if target == "stripe-event" { folders.append("events/stripe/payloads") }
        var files: [String] = []
        for folder in folders {
            let url = packageRoot.appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            files += names.filter { $0 != "README.md" }.sorted().map { url.appendingPathComponent($0).path }
        }
        if target == "fixture" {
            let events = packageRoot.appendingPathComponent("events")
            let all = FileManager.default.enumerator(atPath: events.path)?.compactMap { $0 as? String } ?? []
            files += all.filter { $0.hasSuffix(".json") && !$0.contains("payloads/") }.sorted().map {
                events.appendingPathComponent($0).path
            }
        }
        return files
    }

    @Test(arguments: targets)
    func everySeedAndFinding_passesThroughItsTarget_withoutACrash(target: String) throws {
        let inputs = Self.inputs(target)
        #expect(!inputs.isEmpty, "every target has seeds")
        let decode = try #require(FuzzTargets.all[target])
        for input in inputs { decode(try Data(contentsOf: URL(fileURLWithPath: input))) }
    }

    @Test func everyTargetIsReplayed() {
        #expect(Set(Self.targets) == Set(FuzzTargets.all.keys))
    }
}
