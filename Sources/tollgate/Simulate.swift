import ArgumentParser
import Foundation
import TollgateQuotaSimulator

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulations in virtual time of what cannot run here.", subcommands: [SimulateQuota.self])
}

struct SimulateQuota: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota",
        abstract: "auth-validator's strict and lease paths against a model of Firestore, in virtual time, deterministic by seed.",
        discussion: """
            N instances run the real quota code; the store is a model of Firestore (log-normal round trips, pessimistic \
            locks per document, ABORTED after 2 s waiting, retries with backoff). Prints a Markdown table: what was \
            admitted of what could be, over-admission, wrongful refusals, units stranded, writes a second on the hottest \
            document, the latency the quota adds, aborts. See docs/quota-leases.md for the figures assumed.
            """)

    @Flag(help: "The scenarios scaled down (10 s, a fifth of the load): what CI runs.")
    var short = false

    @Option(help: "The seed of arrivals and latencies.")
    var seed: UInt64 = 1

    @Option(help: "Only scenarios whose name contains this.")
    var only: String?

    @Option(help: "Also write the reports, with per-second series, to this JSON file (for benchmarks/).")
    var json: String?

    func run() async throws {
        var reports: [QuotaSimulationReport] = []
        for scenario in QuotaSimulation.scenarios(short: short) where only.map({ scenario.name.contains($0) }) ?? true {
            for path in QuotaPath.allCases {
                let started = ContinuousClock.now
                let report = try await QuotaSimulation.run(scenario, path: path, seed: seed)
                FileHandle.standardError.write(
                    Data("simulated \(scenario.name), \(path.rawValue): \(ContinuousClock.now - started)\n".utf8))
                reports.append(report)
            }
        }
        print(QuotaSimulation.table(reports))
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(reports).write(to: URL(fileURLWithPath: json))
        }
    }
}
