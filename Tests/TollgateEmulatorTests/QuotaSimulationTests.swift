import Foundation
import Testing
import TollgateTestSupport

/// `tollgate simulate quota --short`, the CI form of the quota simulator: every scenario
/// on both paths never over-admits, refuses wrongly nothing beyond the stated bound,
/// reaches what demand allows, and a seed gives the same table twice.
@Suite struct QuotaSimulationTests {
    @Test func theShortSimulation_neverOverAdmits_andIsDeterministicBySeed() async throws {
        let (status, table, errors) = try await runTollgate(["simulate", "quota", "--short", "--seed", "7"], environment: [:])
        try #require(status == 0, "\(errors)")
        let rows = table.split(separator: "\n").dropFirst(2).map {
            $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(rows.count == 14, "seven scenarios on two paths")
        for row in rows {
            try #require(row.count == 10, "\(row)")
            #expect(row[4] == "0", "over-admitted: \(row)")
            #expect(row[5] == "0", "wrongful refusals: \(row)")
            // Only killed instances may strand units (their leases' unspent blocks); the
            // shortfall is then theirs, and wrongful refusals above already exclude it.
            let stranded = Int(row[6]) ?? -1
            #expect(stranded == 0 || (row[0].contains("killed") && row[1] == "lease"), "units stranded: \(row)")
            #expect((Double(row[3]) ?? 0) >= (stranded == 0 ? 0.99 : 0.9), "admitted of possible: \(row)")
        }
        let (_, again, _) = try await runTollgate(["simulate", "quota", "--short", "--seed", "7", "--only", "killed"], environment: [:])
        let killedRows = table.split(separator: "\n").filter { $0.contains("killed") }
        #expect(again.split(separator: "\n").filter { $0.contains("killed") } == killedRows, "the same seed, the same run")
    }
}
