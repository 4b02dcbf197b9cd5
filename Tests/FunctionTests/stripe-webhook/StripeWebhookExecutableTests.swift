import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real `stripe-webhook` executable, started on a free port, fed signed events over HTTP.
@Suite(.serialized) struct StripeWebhookExecutableTests {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("stripe-webhook")
    }

    @Test func executable_servesSignedEvents_refusesForgeries_andStopsOnSIGTERM() async throws {
        let binary = Self.executable
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build it first: swift build --product stripe-webhook")
        let directory = scratchURL("e2e")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let secret = "whsec_e2e_local_value_only"
        let process = Process()
        process.executableURL = binary
        process.environment = [
            "PORT": "0", "STRIPE_WEBHOOK_SECRET": secret, "TOLLGATE_CHECKOUT_SECRET": "stripe-webhook-e2e-checkout-secret-local-only",
            "TOLLGATE_PRICE_TIERS": "price_pro_monthly=pro",
            "TOLLGATE_STORE": "sqlite://\(directory.path)/state.db", "K_SERVICE": "stripe-webhook",
        ]
        let lines = Recorder<String>()
        collectOutput(of: process, into: lines, keptAs: "stripe-webhook")
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        var port: Int?
        for _ in 0..<100 where port == nil {
            try await Task.sleep(for: .milliseconds(50))
            port = lines.all.compactMap { try? JSONValue.parse(Data($0.utf8)) }
                .first { $0["message"]?.stringValue == "listening" }?["port"]?.stringValue.flatMap { Int($0) }
        }
        let url = URL(string: "http://127.0.0.1:\(try #require(port))/")!

        let body = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-pro.json"))
        let signature = StripeSigner(secret: secret).header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let (status, answer) = try await post(
            url, body: body, headers: ["Stripe-Signature": signature, "Content-Type": "application/json"])
        #expect(status == 200)
        #expect(try JSONValue.parse(answer)["outcome"] == .string("applied"))
        let (again, duplicate) = try await post(url, body: body, headers: ["Stripe-Signature": signature])
        #expect(again == 200)
        #expect(try JSONValue.parse(duplicate)["outcome"] == .string("duplicate"))
        let forged = StripeSigner(secret: "whsec_somebody_else").header(timestamp: Int64(Date().timeIntervalSince1970), body: body)
        #expect(try await post(url, body: body, headers: ["Stripe-Signature": forged]).0 == 400)
        #expect(try await post(url, body: Data(count: 1_100_000), headers: ["Stripe-Signature": signature]).0 == 413)

        let state = try await SQLiteDatabase(path: directory.appendingPathComponent("state.db").path).stateDump()
        #expect(state["documents"]?["accounts/cus_TgAlpha01"]?["tier"] == .string("pro"))

        process.terminate()  // SIGTERM
        #expect(try await process.exitStatus(within: .seconds(10)) == 0, "stops cleanly inside Cloud Run's 10 seconds")
        let logged = lines.all.joined(separator: "\n")
        #expect(!logged.contains(secret), "the webhook secret never reaches the log")
        #expect(logged.contains(#""message":"stopped""#))
    }
}
