import Foundation
import Testing
import TollgateDrivers
import TollgateEmulator
import TollgateGoogle
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

/// `deploy/` and the functions' declarations say the same thing (principle 7).
@Suite struct DeploymentDriftTests {
    static let committed = packageRoot.appendingPathComponent(TerraformVariables.path)

    static func rendered() throws -> JSONValue { try JSONValue.parse(try Data(contentsOf: committed)) }

    @Test func committedTerraformVariables_areWhatTheDeclarationsRender() throws {
        let text = try String(contentsOf: Self.committed, encoding: .utf8)
        #expect(text == TerraformVariables.text(EmulatedFunction.declarations), "run: swift run tollgate deploy render")
    }

    /// Nothing lists the functions by hand but Package.swift's rows and the registry: the
    /// Dockerfile builds every folder under functions/, Cloud Build's pipeline is rendered.
    @Test func everyListOfFunctions_namesExactlyTheDeclaredOnes() throws {
        let names = Set(EmulatedFunction.names)
        let folders = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("functions").path)
            .filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == names, "functions/ holds one folder per declared function")
        let dockerfile = try String(contentsOf: packageRoot.appendingPathComponent("deploy/Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains("for folder in functions/*/"), "deploy/Dockerfile builds every function's folder")

        let pipeline = try String(contentsOf: packageRoot.appendingPathComponent(CloudBuildPipeline.path), encoding: .utf8)
        #expect(pipeline == CloudBuildPipeline.text(EmulatedFunction.declarations), "run: swift run tollgate deploy render")
        let images = Set(pipeline.matches(of: /FUNCTION=([a-z0-9-]+)/).map { String($0.1) })
        #expect(images == names, "deploy/cloudbuild.yaml builds images of \(images.sorted())")
        for name in names { #expect(pipeline.contains("tollgate/\(name):$COMMIT_SHA"), "\(name)'s image is tagged with the commit") }

        let manifest = try String(contentsOf: packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let rows = Set(manifest.matches(of: /\(\s*"([a-z0-9-]+)",\s*"[A-Za-z]+",\s*\[/).map { String($0.1) })
        #expect(rows == names, "Package.swift declares \(rows.sorted())")
    }

    @Test func render_changesWhenADeclarationChanges() {
        var declarations = EmulatedFunction.declarations
        declarations[0].service.maxInstances += 1
        #expect(TerraformVariables.text(declarations) != TerraformVariables.text(EmulatedFunction.declarations))
    }

    @Test(arguments: EmulatedFunction.declarations.map(\.name))
    func renderedFunction_carriesItsTriggerSecretsAndResources(name: String) throws {
        let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
        let function = try #require(try Self.rendered()["functions"]?[name])
        #expect(function["trigger"]?.stringValue == declaration.trigger.kind.rawValue)
        #expect(function["timeout_seconds"]?.integerValue == Int64(declaration.service.timeoutSeconds))
        #expect(function["max_instances"]?.integerValue == Int64(declaration.service.maxInstances))
        // Capabilities: Terraform grants and wires by these, never by the name.
        #expect(function["blob_roles"]?.arrayValue?.compactMap(\.stringValue) == declaration.blobs?.storageRoles ?? [])
        #expect((function["env"]?["TOLLGATE_BLOBS"] != nil) == (declaration.blobs != nil), "the bucket's URL goes with a role on it")
        #expect(function["signs_links"]?.boolValue == declaration.signsLinks)
        #expect(function["quota_in_memorystore"]?.boolValue == declaration.leasesQuotaInMemorystore)
        for secret in declaration.secrets {
            #expect(function["secrets"]?[secret]?.stringValue == TerraformVariables.secretID(secret))
            #expect(function["env"]?[secret] == nil, "\(secret) comes from Secret Manager, never a value")
        }
        switch declaration.trigger {
        case .pubSub(let topic, let attempts, let deadline):
            #expect(function["topic"]?.stringValue == topic)
            #expect(function["max_delivery_attempts"]?.integerValue == Int64(attempts))
            #expect(function["ack_deadline_seconds"]?.integerValue == Int64(deadline))
        case .scheduler(let job, let schedule, let zone):
            #expect(function["job"]?.stringValue == job && function["schedule"]?.stringValue == schedule)
            #expect(function["time_zone"]?.stringValue == zone)
        case .cloudTasks(let queue, let retry, let limits):
            let rendered = try #require(try Self.rendered()["queues"]?[queue])
            #expect(rendered["target"]?.stringValue == name)
            #expect(rendered["max_attempts"]?.integerValue == Int64(retry.maxAttempts))
            #expect(rendered["min_backoff"]?.stringValue == "\(retry.minBackoffSeconds)s")
            // A whole rate renders as 10.0, which reads back as an integer.
            let rate = rendered["max_dispatches_per_second"]
            #expect(rate == .double(limits.maxDispatchesPerSecond) || rate?.integerValue.map(Double.init) == limits.maxDispatchesPerSecond)
            #expect(rendered["max_concurrent_dispatches"]?.integerValue == Int64(limits.maxConcurrentDispatches))
        case .http:
            #expect(function["ingress"]?.stringValue != FunctionDeclaration.ServiceSettings.Ingress.internalOnly.rawValue)
        }
    }

    @Test func secretIDs_areTollgatePrefixedAndKebabCase() {
        #expect(TerraformVariables.secretID("STRIPE_API_KEY") == "tollgate-stripe-api-key")
        #expect(TerraformVariables.secretID("TOLLGATE_EXPORT_SIGNING_KEY") == "tollgate-export-signing-key")
    }

    /// Each service's port URLs, with Terraform's placeholders filled in, open the Google
    /// drivers with no I/O before first use: what deploy/ says is what this build runs.
    @Test(arguments: EmulatedFunction.declarations.map(\.name))
    func renderedPortURLs_openTheGoogleDrivers(name: String) async throws {
        let declaration = try #require(EmulatedFunction.declarations.first { $0.name == name })
        let rendered = try #require(try Self.rendered()["functions"]?[name]?["env"]?.objectValue)
        var environment: [String: String] = [:]
        for (key, value) in rendered {
            environment[key] = value.stringValue?
                .replacingOccurrences(of: "{project}", with: "tollgate-prod").replacingOccurrences(of: "{region}", with: "europe-west1")
                .replacingOccurrences(of: "{bucket}", with: "tollgate-prod-tollgate-usage")
                .replacingOccurrences(of: "{tasks_invoker}", with: "tollgate-tasks@tollgate-prod.iam.gserviceaccount.com")
                .replacingOccurrences(of: "{url:usage-report}", with: "https://usage-report-123.europe-west1.run.app")
                .replacingOccurrences(of: "{price_tiers}", with: "price_1=pro")
        }
        #expect(!environment.values.contains { $0.contains("{") }, "every placeholder is one Terraform fills in")
        let ports = try await Ports.open(environment: Environment(environment))
        #expect(ports.store is FirestoreDocumentStore)
        if environment["TOLLGATE_BLOBS"] != nil { #expect(ports.blobs is CloudStorageBlobStore) }
        if !declaration.publishes.isEmpty {
            #expect(ports.publisher is PubSubPublisher, "\(name) publishes, so it names a Pub/Sub project")
        } else {
            await expectCode(.internal) { try await ports.publisher.publish(OutgoingMessage(data: [1]), to: "t") }
        }
        if environment["TOLLGATE_TASKS"] != nil {
            let queue = try #require(ports.tasks as? CloudTasksQueue)
            #expect(queue.project == "tollgate-prod" && queue.location == "europe-west1")
        }
    }
}
