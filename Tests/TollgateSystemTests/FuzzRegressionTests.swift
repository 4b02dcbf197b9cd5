import Foundation
import Testing
import TollgateFuzzTargets
import TollgateTestSupport

/// Every input a fuzz target ever crashed on, and every seed, replayed through the plain
/// build of `tollgate-fuzz`: a fixed crash stays fixed.
@Suite struct FuzzRegressionTests {
    static let targets = [
        "pubsub-envelope", "cloudevent", "stripe-signature", "stripe-event", "jwt", "fixture", "path-stripe-webhook",
        "path-stripe-signature-header", "path-auth-validator", "path-usage-recorder", "path-usage-report", "path-quota-reset",
        "path-usage-export", "path-cleanup", "checkout-reference", "path-clerk-webhook",
    ]

    static func inputs(_ target: String) -> [String] {
        var folders = ["Tests/Fuzz/seeds/\(target)", "Tests/Fuzz/regressions/\(target)"]
        if target == "stripe-event" || target == "path-stripe-webhook" { folders.append("events/stripe/payloads") }
        if target == "path-clerk-webhook" { folders.append("events/clerk/payloads") }
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
    func everySeedAndFinding_passesThroughItsTarget_withoutACrash(target: String) async throws {
        let inputs = try Self.inputs(target).map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(!inputs.isEmpty, "every target has seeds")
        let run = try #require(FuzzTargets.all[target])
        // On a thread of its own, as libFuzzer calls it: the path targets block their
        // caller until the function answers, which must not be a thread of the pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread {
                for input in inputs { run(input) }
                done.resume()
            }.start()
        }
    }

    @Test func everyTargetIsReplayed() {
        #expect(Set(Self.targets) == Set(FuzzTargets.all.keys))
    }
}
