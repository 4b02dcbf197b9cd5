import Foundation
import Testing
import TollgateEmulator
import TollgateModel
import TollgateTestSupport

/// `deploy/bootstrap.sh --dry-run`: every command of a first deploy, printed in the one
/// order that works, and no secret value on any line.
@Suite struct BootstrapTests {
    static func dryRun(_ arguments: [String], environment: [String: String] = [:]) async throws -> (
        status: Int32, output: String, errors: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [packageRoot.appendingPathComponent("deploy/bootstrap.sh").path] + arguments
        process.currentDirectoryURL = packageRoot
        // No Stripe or Clerk secret from the test's own environment.
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("STRIPE_") && !$0.key.hasPrefix("CLERK_") }
            .merging(environment) { _, given in given }
        let run = try await runToEnd(process)
        return (run.status, String(decoding: run.output, as: UTF8.self), String(decoding: run.errors, as: UTF8.self))
    }

    static let arguments = [
        "--project", "acme-prod", "--github", "acme/tollgate", "--tfvars", "deploy/terraform/production.tfvars.example", "--dry-run",
    ]

    @Test func theDryRun_printsEveryStepInOrder_registryAndSecretVersionsBeforeTheServices() async throws {
        let (status, output, errors) = try await Self.dryRun(Self.arguments)
        #expect(status == 0, "\(errors)")
        let commands = output.split(separator: "\n").filter { $0.hasPrefix("+ ") }.map(String.init)
        func position(_ fragment: String) -> Int? { commands.firstIndex { $0.contains(fragment) } }
        let order = [
            "gcloud services enable", "gcloud storage buckets create gs://acme-prod-tollgate-tfstate",
            "gcloud iam service-accounts create tollgate-deployer", "terraform -chdir=deploy/terraform init",
            "-target=google_artifact_registry_repository.tollgate", "gcloud secrets versions add tollgate-key-pepper",
            "gcloud builds triggers create github", "gcloud builds triggers run tollgate-main",
        ]
        let positions = order.map(position)
        #expect(!positions.contains(nil), "\(zip(order, positions).filter { $0.1 == nil }.map(\.0))")
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "\(commands.joined(separator: "\n"))")
        // The registry and the secrets exist before the pipeline pushes images and starts services.
        let apply = try #require(commands.first { $0.contains("-target=") })
        #expect(apply.contains("-target=google_secret_manager_secret.secret"))

        // Every secret a function declares gets a first version, or is asked for by name.
        let declared = Set(EmulatedFunction.declarations.flatMap(\.secrets))
        let generated: Set = ["TOLLGATE_KEY_PEPPER", "TOLLGATE_CHECKOUT_SECRET", "TOLLGATE_EXPORT_SIGNING_KEY"]
        for variable in declared {
            let id = TerraformVariables.secretID(variable)
            if generated.contains(variable) {
                #expect(position("gcloud secrets versions add \(id) ") != nil, "\(id) is generated")
            } else {
                #expect(errors.contains("\(variable) (\(id))"), "\(variable) is asked for: \(errors)")
            }
        }
        // The deployer's roles are the documented list, project-level only.
        let roles = commands.compactMap { $0.firstMatch(of: /--role (roles\/[A-Za-z.]+)/)?.output.1 }.map(String.init)
        #expect(roles.count >= 10 && !roles.contains("roles/owner") && !roles.contains("roles/editor"))
    }

    @Test func givenSecrets_goInOnStandardInput_neverOnAPrintedLine() async throws {
        let values = [
            "STRIPE_WEBHOOK_SECRET": "whsec_bootstrapTestValue1", "STRIPE_API_KEY": "rk_live_bootstrapTestValue2",
            "CLERK_WEBHOOK_SECRET": "whsec_Ym9vdHN0cmFwVGVzdFZhbHVlMw==",
        ]
        let (status, output, errors) = try await Self.dryRun(Self.arguments, environment: values)
        #expect(status == 0 && !errors.contains("set these"), "\(errors)")
        for (variable, value) in values {
            #expect(output.contains("printenv \(variable) | gcloud secrets versions add \(TerraformVariables.secretID(variable)) "))
            #expect(!output.contains(value) && !errors.contains(value), "\(variable)'s value is printed")
        }
    }

    /// The export signing key the bootstrap makes with openssl (no Swift toolchain needed)
    /// is the key `tollgate` reads: its public key is openssl's own.
    @Test func theGeneratedSigningKey_isAnEd25519SeedTollgateReads() async throws {
        let (_, output, _) = try await Self.dryRun(Self.arguments)
        let line = try #require(output.split(separator: "\n").first { $0.contains("versions add tollgate-export-signing-key") })
        let producer = try #require(line.dropFirst(2).components(separatedBy: " | gcloud secrets").first)
        let folder = scratchURL("bootstrap-signing-key")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let generate = Process()
        generate.executableURL = URL(fileURLWithPath: "/bin/bash")
        generate.arguments = ["-c", producer]
        let key = String(decoding: try await runToEnd(generate).output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Data(base64Encoded: key)?.count == 32)

        let tollgate = Process()
        tollgate.executableURL = productURL("tollgate")
        tollgate.arguments = ["export", "public-key"]
        tollgate.environment = ["TOLLGATE_EXPORT_SIGNING_KEY": key]
        let document = try JSONValue.parse(try await runToEnd(tollgate).output)
        // openssl's public key for the same seed: the last 32 bytes of its SubjectPublicKeyInfo.
        let seedFile = folder.appendingPathComponent("seed.der")
        let prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
        try Data(prefix + Array(Data(base64Encoded: key) ?? Data())).write(to: seedFile)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/bin/bash")
        openssl.arguments = ["-c", "openssl pkey -inform DER -in '\(seedFile.path)' -pubout -outform DER | tail -c 32 | base64"]
        let expected = String(decoding: try await runToEnd(openssl).output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!expected.isEmpty && document["publicKey"]?.stringValue == expected)
    }

    @Test(arguments: [
        (["--project", "p", "--dry-run"], "--github OWNER/REPO is required"),
        (["--github", "a/b", "--dry-run"], "--project PROJECT is required"),
        (["--project", "p", "--github", "a/b", "--tfvars", "/etc/passwd", "--dry-run"], "must be a path inside the repository"),
        (["--project", "p", "--github", "a/b", "--tfvars", "deploy/terraform/none.tfvars", "--dry-run"], "does not exist"),
    ])
    func aMissingOrMisplacedArgument_isNamed_andNothingRuns(arguments: [String], message: String) async throws {
        let (status, output, errors) = try await Self.dryRun(arguments)
        #expect(status == 2 && errors.contains(message), "\(errors)")
        #expect(!output.contains("+ "))
    }
}
