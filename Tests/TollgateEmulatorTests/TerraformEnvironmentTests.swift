import Foundation
import Testing
import TollgateEmulator
import TollgateModel
import TollgateTestSupport

/// Every Cloud Run service starts with what Terraform gives it: the environment
/// `deploy/checks/service_environment.py` reads off the Terraform files, the rendered
/// variables and `production.tfvars.example`, with each secret Secret Manager adds as a
/// stand-in of its shape. A setting Terraform leaves out stops a real executable with
/// exit 78, so it fails here rather than at the first apply.
@Suite struct TerraformEnvironmentTests {
    static func environments(tfvars: URL? = nil) async throws -> (status: Int32, services: JSONValue?, errors: String) {
        let process = Process()
        process.executableURL = PythonPeer.python
        process.arguments =
            [packageRoot.appendingPathComponent("deploy/checks/service_environment.py").path]
            + (tfvars.map { ["--tfvars", $0.path] } ?? [])
        let run = try await runToEnd(process)
        return (run.status, try? JSONValue.parse(run.output), String(decoding: run.errors, as: UTF8.self))
    }

    @Test(Peer.pythonVenv.trait)
    func everyService_startsWithTheEnvironmentTerraformGivesIt_andAnswersHealthz() async throws {
        let (status, services, errors) = try await Self.environments()
        try #require(status == 0, "\(errors)")
        let declared = Set(EmulatedFunction.declarations.map(\.name))
        let rendered = try #require(services?.objectValue)
        #expect(Set(rendered.keys) == declared)
        let secrets = try LocalEnvironment.secretStandIns()
        for name in declared.sorted() {
            let service = try #require(rendered[name])
            var environment = (service["env"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            for secret in service["secrets"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                let standIn = secrets[secret]
                #expect(standIn != nil, "no stand-in for \(name)'s secret \(secret)")
                environment[secret] = standIn
            }
            // What Cloud Run sets; the metrics port is any free one here (Terraform's is 9091).
            environment.merge(["K_SERVICE": name, "K_REVISION": "\(name)-00001-abc", "TOLLGATE_METRICS_PORT": "0"]) { _, cloudRun in
                cloudRun
            }
            // The one deployed executable, which serves the function K_SERVICE names.
            let function: RunningFunction
            do {
                function = try await RunningFunction("tollgate-functions", environment: environment)
            } catch {
                Issue.record("\(name) does not start with Terraform's environment: \(error)")
                continue
            }
            let (code, body) = try await get(function.url.appendingPathComponent("healthz"))
            #expect(code == 200, "\(name): \(code) \(String(decoding: body, as: UTF8.self))")
            #expect(function.log.contains(#""function":"\#(name)""#), "it serves \(name)")
            #expect(try await function.stop() == 0, "\(name) stops cleanly on SIGTERM")
        }
    }

    /// A service named after no function stops at start-up, naming the ones there are.
    @Test func theOneExecutable_refusesAServiceNamedAfterNoFunction() async throws {
        let process = Process()
        process.executableURL = productURL("tollgate-functions")
        process.environment = ["K_SERVICE": "usage-recorder-v2", "PORT": "0"]
        let run = try await runToEnd(process, combined: true)
        let text = String(decoding: run.output, as: UTF8.self)
        #expect(run.status == 78)
        #expect(text.contains("K_SERVICE names no function ('usage-recorder-v2')") && text.contains("usage-recorder, "), "\(text)")
    }

    /// The test above would pass vacuously if a missing setting went unnoticed: without
    /// `clerk_issuer`, Terraform refuses the plan; without its value, account-api stops.
    @Test(Peer.pythonVenv.trait)
    func aRequiredVariableLeftOut_isNamed() async throws {
        let example = try String(
            contentsOf: packageRoot.appendingPathComponent("deploy/terraform/production.tfvars.example"), encoding: .utf8)
        let folder = scratchURL("tfvars-without-clerk")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let tfvars = folder.appendingPathComponent("production.tfvars")
        let without = example.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("clerk_issuer") }
        try #require(without.count < example.split(separator: "\n", omittingEmptySubsequences: false).count)
        try Data(without.joined(separator: "\n").utf8).write(to: tfvars)
        let (status, _, errors) = try await Self.environments(tfvars: tfvars)
        #expect(status == 1 && errors.contains("var.clerk_issuer is required"), "\(errors)")
    }
}
