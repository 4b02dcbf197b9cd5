import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@testable import AuthValidator

/// The Envoy and Traefik recipes under `deploy/gateways/`, read as the gateways read them
/// (YAML, parsed by PyYAML), against the headers the validator really answers with: every
/// identity header it sends reaches the API, the quota reaches the client, every
/// X-Tollgate-* header a client could forge is removed first, and failure is closed.
@Suite struct GatewayRecipeFilesTests {
    /// What the API may trust once a gateway passes a request: set only from the verdict.
    static let identity = TollgateHeaders.identity
    /// Headers the validator reads from the gateway, or writes: a client's copy must go.
    static let forgeable = TollgateHeaders.all
    static let quota = ["RateLimit-Policy", "RateLimit"]

    static func recipes() async throws -> (envoy: JSONValue, traefik: JSONValue) {
        let files = ["envoy/envoy.yaml", "traefik/dynamic.yml"].map {
            JSONValue.string(packageRoot.appendingPathComponent("deploy/gateways/\($0)").path)
        }
        let parsed = try await PythonPeer.run(script: "yaml_to_json.py", input: .object(["files": .array(files)]))
        let documents = parsed["documents"]?.arrayValue ?? []
        try #require(documents.count == 2)
        return (documents[0], documents[1])
    }

    /// Every X-Tollgate-* header a verdict can carry (an organization's session, every field
    /// set) is declared in TollgateHeaders, whose list the recipes are held to below: a
    /// header added to the verdict but to no recipe fails here.
    @Test func everyHeaderTheValidatorCanAnswerWith_isDeclared() async throws {
        let verdict = Verdict(
            code: .valid, message: nil, accountId: "org_1", keyId: "tg_live_AbCd", userId: "user_1", organizationId: "org_1",
            organizationRole: "org:admin", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro),
            quota: QuotaWindow(
                start: Timestamp(secondsSinceEpoch: 0), end: Timestamp(secondsSinceEpoch: 86_400), limit: 10, used: 0, leases: nil),
            now: Timestamp(secondsSinceEpoch: 1))
        let sent = Set(verdict.response.headers.keys.filter { $0.lowercased().hasPrefix("x-tollgate-") })
        #expect(sent == Set([TollgateHeaders.code] + Self.identity), "\(sent)")
        let validator = try await EndpointGateTests.Validator()
        let answer = await validator.answer([("X-Original-URI", "/v1/things")])
        #expect(Set(answer.headers.keys.filter { $0.hasPrefix("X-Tollgate-") }).isSubset(of: Set(Self.forgeable)))
        #expect(Self.quota.allSatisfy { answer.headers[$0] != nil })
    }

    /// nginx cannot strip by prefix: each declared header is set or removed (`""`) both where
    /// the validator is asked and where the API is proxied to, and the identity comes from
    /// the verdict alone.
    @Test func nginx_setsOrStripsEveryDeclaredHeader_onBothHops() throws {
        let folder = packageRoot.appendingPathComponent("deploy/gateways/nginx")
        func settings(_ file: String) throws -> [String: String] {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            var found: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 2).map(String.init)
                guard words.count == 3, words[0] == "proxy_set_header" else { continue }
                found[words[1].lowercased()] = String(words[2].dropLast())
            }
            return found
        }
        let asking = try settings("tollgate-auth.conf")
        let proxying = try settings("tollgate-upstream.conf")
        for header in Self.forgeable {
            #expect(asking[header.lowercased()] != nil, "tollgate-auth.conf neither sets nor strips \(header)")
            #expect(proxying[header.lowercased()] != nil, "tollgate-upstream.conf neither sets nor strips \(header)")
        }
        for header in Self.identity {
            #expect(asking[header.lowercased()] == "\"\"", "the validator never sees a client's \(header)")
            let variable = "$tollgate_" + header.dropFirst("X-Tollgate-".count).lowercased()
            #expect(proxying[header.lowercased()] == variable, "\(header) reaches the API from the verdict")
        }
    }

    @Test func docs_listEveryDeclaredHeader() throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("docs/gateway.md"), encoding: .utf8)
        for header in Self.forgeable { #expect(text.contains("`\(header)`"), "docs/gateway.md does not list \(header)") }
    }

    @Test(Peer.pythonVenv.trait)
    func envoy_stripsForgedHeadersFirst_forwardsTheVerdict_andFailsClosed() async throws {
        let envoy = try await Self.recipes().envoy
        let manager = envoy["static_resources"]?["listeners"]?.arrayValue?.first?["filter_chains"]?.arrayValue?.first?["filters"]?
            .arrayValue?
            .first?["typed_config"]
        let filters = try #require(manager?["http_filters"]?.arrayValue)
        let names = filters.compactMap { $0["name"]?.stringValue }
        let strip = try #require(names.firstIndex(of: "envoy.filters.http.header_mutation"))
        let authz = try #require(names.firstIndex(of: "envoy.filters.http.ext_authz"))
        #expect(strip < authz && authz < names.count - 1 && names.last == "envoy.filters.http.router")
        // By prefix: every X-Tollgate-* header, whatever the client names it.
        let mutations = filters[strip]["typed_config"]?["mutations"]?["request_mutations"]?.arrayValue ?? []
        let matcher = mutations.compactMap { $0["remove_on_match"]?["key_matcher"] }.first
        #expect(matcher?["prefix"] == .string("x-tollgate-") && matcher?["ignore_case"] == .bool(true), "\(mutations)")

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
    func traefik_stripsForgedHeadersFirst_distrustsForwardedHeaders_andForwardsTheVerdict() async throws {
        let http = try #require(try await Self.recipes().traefik["http"])
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
