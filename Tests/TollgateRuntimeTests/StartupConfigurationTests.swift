import Foundation
import Logging
import Testing
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

@Suite(.serialized) struct StartupConfigurationTests {
    static let internalCaller = [
        "TOLLGATE_AUDIENCE": "https://function.example", "TOLLGATE_INVOKERS": "tollgate-scheduler@project.iam.gserviceaccount.com",
    ]

    @Test(arguments: [
        ("auth-validator", [:], "TOLLGATE_KEY_PEPPER is not set"),
        ("usage-export", internalCaller, "TOLLGATE_USAGE_REPORT_URL is not set"),
        (
            "usage-export", internalCaller.merging(["TOLLGATE_USAGE_REPORT_URL": "https://r.example"]) { a, _ in a },
            "TOLLGATE_EXPORT_SIGNING_KEY is not set"
        ),
        (
            "usage-export",
            internalCaller.merging(["TOLLGATE_USAGE_REPORT_URL": "https://r.example", "TOLLGATE_EXPORT_SIGNING_KEY": "c2hvcnQ="]) { a, _ in
                a
            },
            "TOLLGATE_EXPORT_SIGNING_KEY the export signing key must be 32 bytes of Ed25519 private key, base64"
        ),
        ("usage-report", internalCaller, "STRIPE_API_KEY is not set"),
        (
            "cleanup", internalCaller.merging(["TOLLGATE_RETENTION_STRIPE_EVENT_DAYS": "2"]) { a, _ in a },
            "TOLLGATE_RETENTION_STRIPE_EVENT_DAYS must be a whole number from 4 to 36500, not '2'"
        ),
    ])
    func missingSetting_stopsStartUp_withOneLineNamingIt(function: String, environment: [String: String], line: String) throws {
        let process = Process()
        process.executableURL = productURL(function)
        process.environment = environment.merging(["PORT": "0", "TOLLGATE_STORE": "sqlite::memory:"]) { a, _ in a }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 78)
        #expect(text == "\(function): configuration: \(line)\n")
    }
}
