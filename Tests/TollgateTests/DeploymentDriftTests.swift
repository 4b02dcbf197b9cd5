import Foundation
import StripeWebhook
import Testing
import TollgateModel

/// `deploy/` and the functions' declarations say the same thing (principle 7).
@Suite struct DeploymentDriftTests {
    @Test func stripeWebhookService_matchesItsDeclaration() throws {
        let declaration = StripeWebhookFunction.declaration
        let yaml = try String(contentsOf: packageRoot.appendingPathComponent("deploy/cloud-run/\(declaration.name).yaml"), encoding: .utf8)
        #expect(yaml.contains("name: \(declaration.name)\n"))
        for secret in declaration.secrets {
            #expect(
                yaml.contains("- name: \(secret)\n              valueFrom:\n                secretKeyRef:"),
                "\(secret) comes from Secret Manager")
        }
        #expect(yaml.contains("- name: TOLLGATE_PRICE_TIERS"), "the function refuses to start without it")
        #expect(yaml.contains("path: /healthz"))
    }
}
