import Foundation
import Testing
import TollgateEmulator
import TollgateModel

/// `deploy/` and the functions' declarations say the same thing (principle 7).
@Suite struct DeploymentDriftTests {
    @Test(arguments: EmulatedFunction.declarations.map(\.name))
    func serviceFile_matchesItsFunctionsDeclaration(name: String) throws {
        let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
        let file = packageRoot.appendingPathComponent("deploy/cloud-run/\(name).yaml")
        let yaml = try String(contentsOf: file, encoding: .utf8)
        #expect(yaml.contains("  name: \(name)\n"))
        #expect(yaml.contains("image: REGION-docker.pkg.dev/PROJECT/tollgate/\(name):latest"))
        for secret in declaration.secrets {
            #expect(
                yaml.contains("- name: \(secret)\n              valueFrom:\n                secretKeyRef:"),
                "\(secret) comes from Secret Manager")
        }
        if declaration.trigger.requiresOIDC || !declaration.subscriptions.isEmpty {
            #expect(yaml.contains("- name: TOLLGATE_AUDIENCE"), "pushes and jobs carry OIDC tokens the runtime checks")
            #expect(yaml.contains("- name: TOLLGATE_INVOKERS"))
        }
        #expect(yaml.contains("path: /healthz"))
    }

    @Test func everyServiceFile_belongsToAFunction() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("deploy/cloud-run").path)
        #expect(Set(files) == Set(EmulatedFunction.declarations.map { "\($0.name).yaml" }))
    }
}
