import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport

@testable import AuthValidator

/// The feature gate belongs to the gateway: the endpoint comes from its one header,
/// normalised as RFC 3986 allows and matched on whole segments; the client can only add
/// to what the endpoint requires (issue 13, finding 5).
@Suite struct EndpointGateTests {
    let gate = EndpointGate([(prefix: "/v1/priority", feature: .priorityQueue), (prefix: "/v1/jobs/", feature: .asyncJobs)])

    @Test(arguments: [
        "/v1/priority", "/v1/priority/", "/v1/priority/x", "/v1/./priority", "/v1//priority", "/v1/%70riority", "/V1/priority",
        "/v1/x/../priority", "/v1/priority?cheap=1", "/v1/%2e/priority", "//v1/priority#frag", "https://api.example.com/v1/priority",
        "/v1/%2E%2E/v1/priority",
        // What an upstream routes to /v1/priority when it decodes %2F or takes \ and %5C for a
        // slash (ASGI, WSGI), or drops `;` parameters (servlet containers).
        "/v1%2Fpriority", "/v1%2fpriority", "/v1%5Cpriority", "/v1%5cpriority", "/v1\\priority", "/v1/%2Fpriority",
        "/v1;x=1/priority", "/v1/priority;jsessionid=1", "/v1%3Bx/priority", "/v1%2Fx%2F..%2Fpriority", "/V1%2FPRIORITY?x=%2F",
    ])
    func spellingsOfAGatedPath_allNeedItsFeature(endpoint: String) {
        #expect(gate.features(for: endpoint) == [.priorityQueue])
    }

    @Test(arguments: ["/v1/priorityx", "/v1/priority-lane", "/v1", "/", "/v2/priority", "/v2%2Fpriority", "/v1/x?next=/v1/priority", ""])
    func otherPaths_needNothing(endpoint: String) {
        #expect(gate.features(for: endpoint).isEmpty)
    }

    /// An endpoint that may reach two routes needs both routes' features and pays the
    /// higher price: `/v1%2Fbulk` is `/v1/bulk` to Starlette.
    @Test func anEndpointOfSeveralRoutes_needsTheUnion_andPaysTheMost() {
        let costs = EndpointCosts([(prefix: "/v1/bulk", cost: 10), (prefix: "/v1", cost: 2)])
        #expect(costs.cost(forKeys: EndpointGate.keys("/v1%2Fbulk")) == 10)
        #expect(costs.cost(forKeys: EndpointGate.keys("/v1;p/bulk/run")) == 10)
        #expect(costs.cost(forKeys: EndpointGate.keys("/v1/things")) == 2)
        #expect(EndpointGate.keys("/v1/things") == ["/v1/things"], "a plain path is one route")
        let both = EndpointGate([(prefix: "/v1/jobs%2fx", feature: .asyncJobs), (prefix: "/v1/jobs/x", feature: .priorityQueue)])
        #expect(both.features(for: "/v1/jobs%2Fx") == [.asyncJobs, .priorityQueue])
    }

    @Test func configuredPrefixes_areNormalisedToo() {
        #expect(gate.features(for: "/v1/jobs") == [.asyncJobs])
        #expect(gate.features(for: "/v1/jobs/42") == [.asyncJobs])
        #expect(gate.features(for: "/v1/jobsearch").isEmpty)
    }

    @Test func normalize_followsRFC3986() {
        #expect(EndpointGate.normalize("/a/b/c/./../../g") == "/a/g")
        #expect(EndpointGate.normalize("/a/%7euser/%2fx") == "/a/~user/%2Fx")
        #expect(EndpointGate.normalize("/../..") == "/")
    }

    // MARK: - Through the validator

    static let pepper = "pepper-for-the-endpoint-gate-tests-0123456789"

    struct Validator {
        let host: FunctionHost<AuthValidatorFunction>
        let key: String
        let store: SQLiteDocumentStore

        /// A Pro account (no priorityQueue) with one key; the endpoint read as `endpointHeader` says.
        init(
            endpointHeader: String = AuthValidatorFunction.Configuration.defaultEndpointHeader,
            endpointCosts: [(prefix: String, cost: Int64)] = []
        ) async throws {
            store = SQLiteDocumentStore(try temporaryDatabase())
            key = APIKeys.generate(mode: .test)
            let pro = TierCatalog.standard.entitlements(for: .pro)
            try await store.set(
                path("accounts/acct_pro"), try FieldValueEncoder().encode(Account(id: "acct_pro", tier: .pro, entitlements: pro)))
            let record = APIKeyRecord(
                accountId: "acct_pro", displayPrefix: APIKeys.displayPrefix(of: key), name: nil, created: Timestamp(Date()), expires: nil,
                revoked: nil)
            try await store.create(
                try DocumentPath(collection: APIKeyRecord.collection, id: try APIKeys(pepper: EndpointGateTests.pepper).hash(key)),
                try FieldValueEncoder().encode(record))
            let configuration = AuthValidatorFunction.Configuration(
                keys: try APIKeys(pepper: EndpointGateTests.pepper), clerk: nil,
                endpointFeatures: [(prefix: "/v1/priority", feature: .priorityQueue), (prefix: "/v1/jobs", feature: .asyncJobs)],
                endpointCosts: endpointCosts, endpointHeader: endpointHeader)
            let function = AuthValidatorFunction(
                configuration: configuration, store: store, clock: SystemClock(), invalidationVerifier: nil)
            host = FunctionHost(handler: function, store: store, clock: SystemClock(), verifier: nil, logger: capturingLogger().0)
        }

        func ask(_ headers: [(name: String, value: String)], method: String = "POST", path: String = "/") async -> (
            status: Int, code: String?
        ) {
            let response = await answer(headers, method: method, path: path)
            let body = try? JSONValue.parse(response.body)
            return (response.status, (body?["code"] ?? body?["error"]?["code"])?.stringValue)
        }

        func answer(_ headers: [(name: String, value: String)], method: String = "POST", path: String = "/") async -> FunctionResponse {
            await host.handle(FunctionRequest(method: method, path: path, headers: [("X-API-Key", key)] + headers, body: Data()))
        }

        /// What the window counts once the instance has returned its lease (as on SIGTERM).
        var used: Int64? {
            get async throws {
                await host.handler.drained()
                return try await store.get(path("quotas/acct_pro"))?.fields["used"].flatMap {
                    if case .integer(let i) = $0 { i } else { nil }
                }
            }
        }
    }

    /// `X-Tollgate-Feature: asyncJobs` replaced the endpoint's requirement: a Pro key
    /// reached an Enterprise endpoint.
    @Test func aNamedFeature_addsToTheEndpointsRequirement_neverReplacesIt() async throws {
        let validator = try await Validator()
        #expect(await validator.ask([("X-Original-URI", "/v1/priority"), ("X-Tollgate-Feature", "asyncJobs")]).status == 403)
        #expect(await validator.ask([("X-Original-URI", "/v1/jobs"), ("X-Tollgate-Feature", "asyncJobs")]).status == 200)
        #expect(await validator.ask([("X-Original-URI", "/v1/free"), ("X-Tollgate-Feature", "priorityQueue")]).status == 403)
    }

    /// `X-Tollgate-Endpoint: /` beat the gateway's `X-Original-URI`.
    @Test func theEndpoint_comesFromTheGatewaysHeaderAlone() async throws {
        let validator = try await Validator()
        let answer = await validator.ask([("X-Tollgate-Endpoint", "/"), ("X-Original-URI", "/v1/priority")])
        #expect(answer.status == 403)
        #expect(answer.code == "FORBIDDEN")
        #expect(await validator.ask([("X-Original-URI", "/v1/%70riority")]).status == 403)
        #expect(await validator.ask([("X-Original-URI", "/V1//./priority")]).status == 403)
    }

    /// With two `X-Tollgate-Cost` headers (`0`, then `5`) the first won and nothing was consumed.
    @Test(arguments: ["X-Tollgate-Cost", "X-API-Key", "X-Original-URI", "X-Tollgate-Feature", "Authorization", "x-tollgate-anything"])
    func aControlHeaderSentTwice_isA400_andConsumesNothing(name: String) async throws {
        let validator = try await Validator()
        let values = name == "X-API-Key" ? [] : [(name: name, value: "0"), (name: name.lowercased(), value: "5")]
        let headers = name == "X-API-Key" ? [(name: "x-api-key", value: validator.key)] : values
        let answer = await validator.ask(headers)
        #expect(answer.status == 400)
        #expect(answer.code == "INVALID_ARGUMENT")
        #expect(try await validator.used == nil)
    }
}
