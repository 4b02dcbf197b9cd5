import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

@testable import AuthValidator

/// What each gateway sends and what it can use of the answer: the verdict as headers
/// (gateways forward headers, not bodies), the endpoint from whichever form the gateway
/// sends, any method, and statuses nginx's `auth_request` understands.
@Suite struct GatewayContractTests {
    typealias Validator = EndpointGateTests.Validator

    @Test func anAdmittedRequest_carriesTheVerdictAsHeaders_andTheQuotaAsRateLimitFields() async throws {
        let validator = try await Validator()
        let response = await validator.answer([("X-Original-URI", "/v1/things"), ("X-Tollgate-Cost", "3")])
        #expect(response.status == 200)
        #expect(response.headers["X-Tollgate-Code"] == "VALID")
        #expect(response.headers["X-Tollgate-Account"] == "acct_pro")
        #expect(response.headers["X-Tollgate-Key"] == APIKeys.displayPrefix(of: validator.key))
        #expect(response.headers["X-Tollgate-Tier"] == "pro")
        #expect(response.headers.values.allSatisfy { !$0.contains(validator.key) }, "never the key itself")
        let limit = TierCatalog.standard.entitlements(for: .pro).monthlyQuotaUnits
        let policy = try #require(response.headers["RateLimit-Policy"])
        #expect(policy.hasPrefix("\"quota\";q=\(limit);w="))
        let window = try #require(Int(policy.split(separator: "=").last ?? ""))
        #expect((28 * 86_400...31 * 86_400).contains(window), "a calendar month in seconds")
        let current = try #require(response.headers["RateLimit"])
        #expect(current.hasPrefix("\"quota\";r=\(limit - 3);t="))
        #expect(response.headers["Retry-After"] == nil)
    }

    @Test func aRefusal_carriesItsCode_andForAuthRequest_only401Or403() async throws {
        let validator = try await Validator()
        let forbidden = await validator.answer([("X-Original-URI", "/v1/priority")])
        #expect(forbidden.status == 403 && forbidden.headers["X-Tollgate-Code"] == "FORBIDDEN")
        let exhausted = Verdict(
            code: .usageExceeded, accountId: "acct_pro", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro),
            quota: QuotaWindow(
                start: Timestamp(rfc3339: "2026-01-01T00:00:00Z")!, end: Timestamp(rfc3339: "2026-02-01T00:00:00Z")!, limit: 0, used: 10_000
            ),
            now: Timestamp(rfc3339: "2026-01-31T23:59:00Z")!)
        let plain = exhausted.response
        #expect(plain.status == 429 && plain.headers["Retry-After"] == "60")
        let forNginx = exhausted.response(forAuthRequest: true)
        #expect(forNginx.status == 403, "auth_request makes a 429 a 500")
        #expect(forNginx.headers["X-Tollgate-Code"] == "USAGE_EXCEEDED" && forNginx.headers["Retry-After"] == "60")
        #expect(Verdict.refused(.revoked, "revoked", now: exhausted.now).response(forAuthRequest: true).status == 401)
    }

    @Test(arguments: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    func anyMethod_isChecked_asEnvoysExtAuthzAsksWithTheClientsOwn(method: String) async throws {
        let validator = try await Validator()
        #expect(await validator.ask([("X-Original-URI", "/v1/things")], method: method).status == 200)
        #expect(await validator.ask([("X-Original-URI", "/v1/priority")], method: method).status == 403)
    }

    /// Envoy's HTTP ext_authz sends the client's path as the request's own path
    /// (after `path_prefix`); `TOLLGATE_ENDPOINT_HEADER=:path` reads it there.
    @Test func envoy_theEndpointIsTheRequestPath() async throws {
        let validator = try await Validator(endpointHeader: AuthValidatorFunction.requestPath)
        #expect(await validator.ask([], method: "DELETE", path: "/v1/priority/42?x=1").status == 403)
        #expect(await validator.ask([("X-Original-URI", "/v1/things")], method: "GET", path: "/v1/priority").status == 403)
        #expect(await validator.ask([("X-Original-URI", "/v1/priority")], method: "GET", path: "/v1/things").status == 200)
    }

    /// Traefik's forwardAuth sends `X-Forwarded-Method` and `X-Forwarded-Uri`.
    @Test func traefik_theEndpointIsXForwardedUri() async throws {
        let validator = try await Validator(endpointHeader: "X-Forwarded-Uri")
        #expect(
            await validator.ask(
                [("X-Forwarded-Method", "PUT"), ("X-Forwarded-Uri", "/v1/priority/7"), ("X-Original-URI", "/v1/x")], method: "GET"
            )
            .status == 403)
        #expect(await validator.ask([("X-Forwarded-Uri", "/v1/things")]).status == 200)
    }

    @Test func endpointHeaderSetting_takesAHeaderNameOrPath_andNothingElse() throws {
        for good in ["X-Forwarded-Uri", ":path", "X-Original-URI"] {
            let configuration = try AuthValidatorFunction.Configuration(
                environment: Environment(["TOLLGATE_KEY_PEPPER": EndpointGateTests.pepper, "TOLLGATE_ENDPOINT_HEADER": good]),
                clock: SystemClock())
            #expect(configuration.endpointHeader == good)
        }
        for bad in [":authority", "X Forwarded", "X-Uri:", "é"] {
            #expect(throws: ConfigurationError.self) {
                try AuthValidatorFunction.Configuration(
                    environment: Environment(["TOLLGATE_KEY_PEPPER": EndpointGateTests.pepper, "TOLLGATE_ENDPOINT_HEADER": bad]),
                    clock: SystemClock())
            }
        }
    }

    @Test func anIdNotFitForAHeader_isLeftOut_neverSentRaw() {
        #expect(Verdict.headerValue("user_2abc") == "user_2abc")
        #expect(Verdict.headerValue("a\r\nX-Injected: 1") == nil)
        #expect(Verdict.headerValue("ünicode") == nil)
        #expect(Verdict.headerValue(String(repeating: "a", count: 257)) == nil)
    }

    /// A gateway need not send a cost: `TOLLGATE_ENDPOINT_COSTS` prices routes, the longest
    /// prefix deciding; a gateway's `X-Tollgate-Cost` still wins.
    @Test func perEndpointCosts_areConsumed_withoutACostHeader() async throws {
        let validator = try await Validator(endpointCosts: [("/v1/bulk", 10), ("/v1/bulk/cheap", 2), ("/v1/free", 0)])
        #expect(await validator.ask([("X-Original-URI", "/v1/things")]).status == 200)
        #expect(try await validator.used == 1)
        #expect(await validator.ask([("X-Original-URI", "/V1/bulk/run?x=1")]).status == 200)
        #expect(try await validator.used == 11)
        #expect(await validator.ask([("X-Original-URI", "/v1/bulk/cheap/1")]).status == 200)
        #expect(try await validator.used == 13)
        #expect(await validator.ask([("X-Original-URI", "/v1/bulkx")]).status == 200)
        #expect(try await validator.used == 14, "whole segments only")
        #expect(await validator.ask([("X-Original-URI", "/v1/bulk/run"), ("X-Tollgate-Cost", "3")]).status == 200)
        #expect(try await validator.used == 17, "the gateway's header wins")
        #expect(await validator.ask([("X-Original-URI", "/v1/free/ping")]).status == 200)
        #expect(try await validator.used == 17, "a route priced 0 checks without consuming")
    }

    /// `TOLLGATE_QUOTA_STORE` names Redis as redis://HOST:PORT[/DB] and holds leases, so it
    /// needs lease mode; anything else stops start-up with the setting named.
    @Test(arguments: [
        ("http://10.0.0.3:6379", "lease"), ("redis://10.0.0.3:6379/99", "lease"), ("redis://10.0.0.3:6379", "strict"),
    ])
    func quotaStoreSetting_refusesWhatItCannotUse(store: String, mode: String) {
        #expect {
            try AuthValidatorFunction.Configuration(
                environment: Environment([
                    "TOLLGATE_KEY_PEPPER": EndpointGateTests.pepper, "TOLLGATE_QUOTA_STORE": store, "TOLLGATE_QUOTA_MODE": mode,
                ]),
                clock: SystemClock())
        } throws: { ($0 as? ConfigurationError)?.setting == "TOLLGATE_QUOTA_STORE" }
    }

    @Test func quotaStoreSetting_readsTheAddress() throws {
        let configuration = try AuthValidatorFunction.Configuration(
            environment: Environment(["TOLLGATE_KEY_PEPPER": EndpointGateTests.pepper, "TOLLGATE_QUOTA_STORE": "redis://10.0.0.3/2"]),
            clock: SystemClock())
        #expect(configuration.quotaStore?.description == "redis://10.0.0.3:6379/2")
        #expect(configuration.quotaMode == .lease)
    }

    @Test(arguments: ["v1/bulk=10", "/v1/bulk=-1", "/v1/bulk=ten", "/v1/bulk", "/v1/bulk=1000001"])
    func endpointCostsSetting_refusesMalformedItems(item: String) {
        #expect(throws: ConfigurationError.self) {
            try AuthValidatorFunction.Configuration(
                environment: Environment(["TOLLGATE_KEY_PEPPER": EndpointGateTests.pepper, "TOLLGATE_ENDPOINT_COSTS": item]),
                clock: SystemClock())
        }
    }
}
