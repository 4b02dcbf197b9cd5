import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// The Envoy and Traefik recipes under `deploy/gateways/`, read as the gateways read them
/// (YAML, parsed by PyYAML), against the headers the validator really answers with: every
/// identity header it sends reaches the API, the quota reaches the client, every
/// X-Tollgate-* header a client could forge is removed first, and failure is closed.
@Suite struct GatewayRecipeFilesTests {
    /// What the API may trust once a gateway passes a request: set only from the verdict.
    static let identity = ["X-Tollgate-Account", "X-Tollgate-Key", "X-Tollgate-User", "X-Tollgate-Tier"]
    /// Headers the validator reads from the gateway, or writes: a client's copy must go.
    static let forgeable =
        identity + [
            "X-Tollgate-Code", "X-Tollgate-Cost", "X-Tollgate-Feature", "X-Tollgate-Endpoint", "X-Tollgate-Gateway",
        ]
    static let quota = ["RateLimit-Policy", "RateLimit"]

    static func recipes() throws -> (envoy: JSONValue, traefik: JSONValue) {
        let files = ["envoy/envoy.yaml", "traefik/dynamic.yml"].map {
            JSONValue.string(packageRoot.appendingPathComponent("deploy/gateways/\($0)").path)
        }
        let parsed = try PythonPeer.run(script: "yaml_to_json.py", input: .object(["files": .array(files)]))
        let documents = parsed["documents"]?.arrayValue ?? []
        try #require(documents.count == 2)
        return (documents[0], documents[1])
    }

    /// The identity headers of a real admitted answer are among those the recipes list.
    @Test func theValidatorsIdentityHeaders_areTheOnesTheRecipesForward() async throws {
        let validator = try await EndpointGateTests.Validator()
        let answer = await validator.answer([("X-Original-URI", "/v1/things")])
        let sent = Set(answer.headers.keys.filter { $0.hasPrefix("X-Tollgate-") && $0 != "X-Tollgate-Code" })
        #expect(!sent.isEmpty && sent.isSubset(of: Set(Self.identity)), "\(sent)")
        #expect(Self.quota.allSatisfy { answer.headers[$0] != nil })
    }

    @Test(Peer.pythonVenv.trait)
    func envoy_stripsForgedHeadersFirst_forwardsTheVerdict_andFailsClosed() throws {
        let envoy = try Self.recipes().envoy
        let manager = envoy["static_resources"]?["listeners"]?.arrayValue?.first?["filter_chains"]?.arrayValue?.first?["filters"]?
            .arrayValue?
            .first?["typed_config"]
        let filters = try #require(manager?["http_filters"]?.arrayValue)
        let names = filters.compactMap { $0["name"]?.stringValue }
        let strip = try #require(names.firstIndex(of: "envoy.filters.http.header_mutation"))
        let authz = try #require(names.firstIndex(of: "envoy.filters.http.ext_authz"))
        #expect(strip < authz && authz < names.count - 1 && names.last == "envoy.filters.http.router")
        let removed = Set(
            (filters[strip]["typed_config"]?["mutations"]?["request_mutations"]?.arrayValue ?? []).compactMap { $0["remove"]?.stringValue })
        #expect(removed == Set(Self.forgeable.map { $0.lowercased() }))

        let config = try #require(filters[authz]["typed_config"])
        #expect(config["failure_mode_allow"] == .bool(false))
        func patterns(_ path: String...) -> Set<String> {
            var node: JSONValue? = config["http_service"]
            for key in path { node = node?[key] }
            return Set((node?["patterns"]?.arrayValue ?? []).compactMap { $0["exact"]?.stringValue })
        }
        #expect(patterns("authorization_request", "allowed_headers") == ["x-api-key", "authorization"], "only the credential")
        #expect(patterns("authorization_response", "allowed_upstream_headers") == Set(Self.identity.map { $0.lowercased() }))
        #expect(
            patterns("authorization_response", "allowed_client_headers")
                == Set((Self.quota + ["Retry-After", "X-Tollgate-Code"]).map { $0.lowercased() }))
        #expect(patterns("authorization_response", "allowed_client_headers_on_success") == Set(Self.quota.map { $0.lowercased() }))
        let timeout = try #require(config["http_service"]?["server_uri"]?["timeout"]?.stringValue)
        #expect((Double(timeout.dropLast()) ?? 99) < 5, "well under the validator's own 5 s deadline")
    }

    @Test(Peer.pythonVenv.trait)
    func traefik_stripsForgedHeadersFirst_distrustsForwardedHeaders_andForwardsTheVerdict() throws {
        let http = try #require(try Self.recipes().traefik["http"])
        let chain = (http["routers"]?["api"]?["middlewares"]?.arrayValue ?? []).compactMap { $0.stringValue }
        #expect(chain == ["strip-tollgate", "tollgate"])
        let stripped = http["middlewares"]?["strip-tollgate"]?["headers"]?["customRequestHeaders"]?.objectValue ?? [:]
        #expect(Set(stripped.keys) == Set(Self.forgeable) && stripped.values.allSatisfy { $0 == .string("") })
        let auth = try #require(http["middlewares"]?["tollgate"]?["forwardAuth"])
        #expect(auth["trustForwardHeader"] == .bool(false), "X-Forwarded-Uri is Traefik's, never the client's")
        #expect((auth["authRequestHeaders"]?.arrayValue ?? []).compactMap { $0.stringValue } == ["X-Api-Key", "Authorization"])
        #expect(Set((auth["authResponseHeaders"]?.arrayValue ?? []).compactMap { $0.stringValue }) == Set(Self.identity + Self.quota))
    }
}
