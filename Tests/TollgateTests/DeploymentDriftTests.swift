import Foundation
import Testing
import TollgateDrivers
import TollgateEmulator
import TollgateGoogle
import TollgateModel
import TollgateRuntime

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

    /// Each service's port URLs open the Google drivers, with no I/O before first use:
    /// what the service file says is what this build can run.
    @Test(arguments: EmulatedFunction.declarations.map(\.name))
    func serviceFile_portURLs_openTheGoogleDrivers(name: String) async throws {
        let yaml = try String(contentsOf: packageRoot.appendingPathComponent("deploy/cloud-run/\(name).yaml"), encoding: .utf8)
        var environment: [String: String] = [:]
        let lines = yaml.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for (index, line) in lines.enumerated() where line.hasPrefix("- name: TOLLGATE_") && index + 1 < lines.count {
            guard lines[index + 1].hasPrefix("value: ") else { continue }
            environment[String(line.dropFirst("- name: ".count))] = String(lines[index + 1].dropFirst("value: ".count))
                .replacingOccurrences(of: "PROJECT", with: "tollgate-prod").replacingOccurrences(of: "REGION", with: "europe-west1")
        }
        let store = try #require(environment["TOLLGATE_STORE"], "every service names its store")
        #expect(store.hasPrefix("firestore://"))
        let ports = try await Ports.open(environment: Environment(environment))
        #expect(ports.store is FirestoreDocumentStore)
        let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
        if environment["TOLLGATE_BLOBS"] != nil { #expect(ports.blobs is CloudStorageBlobStore) }
        if environment["TOLLGATE_PUBSUB"] != nil { #expect(ports.publisher is PubSubPublisher) }
        if !declaration.publishes.isEmpty {
            #expect(environment["TOLLGATE_PUBSUB"] != nil, "\(name) publishes, so its service names a Pub/Sub project")
        } else if environment["TOLLGATE_PUBSUB"] == nil {
            await expectCode(.internal) { try await ports.publisher.publish(OutgoingMessage(data: [1]), to: "t") }
        }
        if let tasks = environment["TOLLGATE_TASKS"] {
            let queue = try #require(ports.tasks as? CloudTasksQueue)
            #expect(queue.project == "tollgate-prod" && queue.location == "europe-west1")
            #expect(tasks.contains("serviceAccount="), "tasks carry the OIDC identity usage-report admits")
        }
    }
}
