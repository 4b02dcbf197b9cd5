import AccountAPI
import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

@Suite struct AccountAPIConfigurationTests {
    let base = [
        "TOLLGATE_KEY_PEPPER": "account-api-test-pepper-not-a-secret-0000", "TOLLGATE_CLERK_ISSUER": "https://clerk.example.com",
        "TOLLGATE_CHECKOUT_SECRET": "account-api-test-checkout-secret-not-a-secret",
    ]

    func configuration(_ extra: [String: String]) throws -> AccountAPIFunction.Configuration {
        try AccountAPIFunction.Configuration(
            environment: Environment(base.merging(extra) { _, new in new }), clock: FixedClock(time: Timestamp(secondsSinceEpoch: 0)))
    }

    @Test func dashboardOrigins_andKeyMode_areRead() throws {
        let read = try configuration([
            "TOLLGATE_DASHBOARD_ORIGINS": "https://app.example.com,http://localhost:3000", "TOLLGATE_KEY_MODE": "test",
        ])
        #expect(read.dashboardOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(read.keyMode == .test)
        #expect(try configuration([:]).dashboardOrigins.isEmpty, "no browser origin is allowed unless configured")
    }

    /// CORS compares origins exactly: a path, a trailing slash or a wildcard would never match
    /// (or match too much), so they stop start-up.
    @Test(arguments: ["https://app.example.com/", "*", "app.example.com", "ftp://files.example.com"])
    func malformedOrigins_stopStartUp(origin: String) {
        #expect(throws: ConfigurationError.self) { try configuration(["TOLLGATE_DASHBOARD_ORIGINS": origin]) }
    }

    @Test func withoutAClerkIssuer_orAPepper_startUpStops() {
        #expect(throws: ConfigurationError.self) {
            try AccountAPIFunction.Configuration(
                environment: Environment(["TOLLGATE_KEY_PEPPER": base["TOLLGATE_KEY_PEPPER"]!]),
                clock: FixedClock(time: Timestamp(secondsSinceEpoch: 0)))
        }
        #expect(throws: ConfigurationError.self) { try configuration(["TOLLGATE_KEY_PEPPER": "short"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["TOLLGATE_KEY_MODE": "prod"]) }
    }

    /// Clerk's `azp` names the origin a token was issued to; without authorized parties any
    /// passes, which start-up warns of (the line names the setting, never a value).
    @Test func withoutAuthorizedParties_startUpWarns() {
        let warnings = ClerkSessionVerifier.startupWarnings(Environment(base))
        #expect(warnings.count == 1 && warnings[0].hasPrefix("TOLLGATE_CLERK_AUTHORIZED_PARTIES is not set"))
        #expect(
            ClerkSessionVerifier.startupWarnings(
                Environment(base.merging(["TOLLGATE_CLERK_AUTHORIZED_PARTIES": "https://app.example.com"]) { $1 })
            ).isEmpty)
        #expect(ClerkSessionVerifier.startupWarnings(Environment([:])).isEmpty, "no Clerk, nothing to warn of")
    }
}
