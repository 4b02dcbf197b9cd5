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
    /// one image serves whichever function K_SERVICE names, so neither the Dockerfile nor
    /// Cloud Build's pipeline names one, and every service runs that image.
    @Test func everyListOfFunctions_namesExactlyTheDeclaredOnes() throws {
        let names = Set(EmulatedFunction.names)
        let folders = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("functions").path)
            .filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == names, "functions/ holds one folder per declared function")
        for file in ["deploy/Dockerfile", "deploy/cloudbuild.yaml"] {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
            #expect(text.contains("tollgate-functions") || text.contains("tollgate/functions:$COMMIT_SHA"), "\(file) builds the one image")
            for name in names {
                #expect(text.firstMatch(of: try Regex("\\b\(name)\\b")) == nil, "\(file) names \(name)")
            }
        }
        let manifest = try String(contentsOf: packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let rows = Set(manifest.matches(of: /\(\s*"([a-z0-9-]+)",\s*"[A-Za-z]+",\s*\[/).map { String($0.1) })
        #expect(rows == names, "Package.swift declares \(rows.sorted())")
    }

    /// The README's "adding a function": a tenth function, declared and nothing else, is
    /// deployed by what `deploy render` makes of its declaration. Terraform (read by
    /// python-hcl2, as CI's deploy checks read it) gives it its service, identity, push
    /// subscription on a new topic, secret, bucket role and link signing, and Cloud Build
    /// runs it from the one image.
    @Test(Peer.pythonVenv.trait)
    func aNewFunction_isDeployed_fromItsDeclarationAlone() async throws {
        let scratch = FunctionDeclaration(
            name: "scratch-analytics", trigger: .pubSub(topic: "scratch-exports-done", maxDeliveryAttempts: 10, ackDeadlineSeconds: 60),
            secrets: ["SCRATCH_ANALYTICS_TOKEN"], publishes: ["scratch-loaded"], blobs: .read, signsLinks: true)
        let declarations = EmulatedFunction.declarations + [scratch]
        let folder = scratchURL("scratch-function")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let variables = folder.appendingPathComponent("functions.auto.tfvars.json")
        try Data(TerraformVariables.text(declarations).utf8).write(to: variables)
        let rendered = try #require(try JSONValue.parse(Data(contentsOf: variables))["functions"]?["scratch-analytics"])
        #expect(rendered["topic"]?.stringValue == "scratch-exports-done")
        #expect(rendered["blob_roles"]?.arrayValue?.compactMap(\.stringValue) == ["roles/storage.objectViewer"])
        #expect(rendered["signs_links"]?.boolValue == true)

        func check(_ variables: URL) async throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = PythonPeer.python
            process.arguments = [
                packageRoot.appendingPathComponent("deploy/checks/check_terraform.py").path, "--variables", variables.path,
            ]
            let run = try await runToEnd(process, combined: true)
            return (run.status, String(decoding: run.output, as: UTF8.self))
        }
        let (status, output) = try await check(variables)
        #expect(status == 0 && output.contains("\(declarations.count) functions, each with"), "\(output)")
        // The same check refuses a function that names the bucket without declaring blob
        // access, so no role on it is granted.
        let roleless = folder.appendingPathComponent("roleless.auto.tfvars.json")
        let bucketByHand = FunctionDeclaration(
            name: "scratch-analytics", trigger: .pubSub(topic: "scratch-exports-done", maxDeliveryAttempts: 10, ackDeadlineSeconds: 60),
            settings: ["TOLLGATE_BLOBS": "gs://{bucket}"])
        try Data(TerraformVariables.text(EmulatedFunction.declarations + [bucketByHand]).utf8).write(to: roleless)
        let refused = try await check(roleless)
        #expect(refused.status == 1 && refused.output.contains("uses the usage bucket without a role"), "\(refused.output)")
    }

    /// A page that counts the functions counts them all, and there is one image and one
    /// binary deployed: "seven images" outlived the seventh function's arrival once.
    /// (A count below three names a few of them, such as "the two functions" that share a
    /// secret, and is left alone.)
    @Test func noPage_namesAStaleCountOfFunctionsImagesOrBinaries() throws {
        let functions = EmulatedFunction.declarations.count
        let numbers = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen"]
        func value(_ word: Substring) -> Int? { Int(word) ?? numbers.firstIndex(of: word.lowercased()).map { $0 + 2 } }
        /// The counts in `text` that disagree with the registry and the one image.
        func staleCounts(in text: String) -> [String] {
            text.matches(of: /(?i)\b([a-z]+|\d+)\s+(functions|executables|services|images|binaries)\b/).compactMap { match in
                guard let count = value(match.output.1) else { return nil }
                let noun = match.output.2.lowercased()
                if noun == "images" || noun == "binaries" || count >= 3 && count != functions { return String(match.output.0) }
                return nil
            }
        }
        // The reader itself: what it must and must not flag.
        #expect(staleCounts(in: "all seven images; \(functions) functions; the two functions; one image") == ["seven images"])
        for file in DocumentationSnippet.files + ["BENCHMARKS.md", "deploy/COSTS.md"] {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
            #expect(staleCounts(in: text).isEmpty, "\(file) names \(staleCounts(in: text)): there are \(functions) functions, one image")
        }
    }

    @Test func committedSettingsReference_isWhatTheDeclarationsRender() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent(SettingsReference.path), encoding: .utf8)
        #expect(text == SettingsReference.text(EmulatedFunction.declarations), "run: swift run tollgate deploy render")
    }

    /// Settings are declared once: every environment variable named in the code is a
    /// declared ``Setting`` (so docs/settings.md lists it), and each is declared in one place.
    @Test func everyVariableTheCodeNames_isDeclaredOnce() throws {
        let declared = Set(
            (RuntimeConfiguration.Settings.all + Ports.Settings.all + [LocalEnvironment.serveURLSetting]
                + EmulatedFunction.declarations.flatMap(\.reads)).map(\.name))
        var declarations: [String: [String]] = [:]
        let files = ["Sources", "functions"].flatMap { folder in
            (FileManager.default.enumerator(atPath: packageRoot.appendingPathComponent(folder).path)?.compactMap { $0 as? String } ?? [])
                .filter { $0.hasSuffix(".swift") }.map { "\(folder)/\($0)" }
        }
        #expect(files.count > 100)
        for file in files {
            let text = try String(contentsOf: packageRoot.appendingPathComponent(file), encoding: .utf8)
            for match in text.matches(of: /"((?:TOLLGATE|STRIPE|CLERK|K|GOOGLE|FIRESTORE|PUBSUB|STORAGE|CLOUD_TASKS|GCE)_[A-Z0-9_]+)"/) {
                #expect(declared.contains(String(match.output.1)), "\(file) names \(match.output.1), which no Setting declares")
            }
            for match in text.matches(of: /(?:Setting(?:\.required)?|days)\(\s*"([A-Z][A-Z0-9_]+)"/) {
                declarations[String(match.output.1), default: []].append(file)
            }
        }
        #expect(Set(declarations.keys) == declared, "declared in the code: \(declarations.keys.sorted())")
        for (name, files) in declarations where files.count != 1 { Issue.record("\(name) is declared in \(files)") }
        for declaration in EmulatedFunction.declarations {
            #expect(declaration.secrets.sorted() == declaration.reads.filter(\.isSecret).map(\.name).sorted(), "\(declaration.name)")
        }
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
        let values = [
            "{project}": "tollgate-prod", "{region}": "europe-west1", "{bucket}": "tollgate-prod-tollgate-usage",
            "{pubsub_invoker}": "tollgate-pubsub-push@tollgate-prod.iam.gserviceaccount.com",
            "{scheduler_invoker}": "tollgate-scheduler@tollgate-prod.iam.gserviceaccount.com",
            "{tasks_invoker}": "tollgate-tasks@tollgate-prod.iam.gserviceaccount.com", "{price_tiers}": "price_1=pro",
            "{clerk_issuer}": "https://clerk.example.com", "{dashboard_origins}": "https://app.example.com",
        ]
        #expect(Set(values.keys) == Set(TerraformVariables.placeholders))
        var environment: [String: String] = [:]
        for (key, value) in rendered {
            var filled = (value.stringValue ?? "").replacingOccurrences(
                of: #"\{url:([a-z0-9-]+)\}"#, with: "https://$1-123.europe-west1.run.app", options: .regularExpression)
            for (placeholder, stand) in values { filled = filled.replacingOccurrences(of: placeholder, with: stand) }
            environment[key] = filled
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
