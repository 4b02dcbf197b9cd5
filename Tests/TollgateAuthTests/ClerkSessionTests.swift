import Foundation
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct ClerkSessionTests {
    let clerk = try! LocalOIDCIssuer(keyID: "ins_local")
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)

    func token(_ claims: [String: JSONValue] = [:], alg: String = "RS256") throws -> String {
        var all: [String: JSONValue] = [
            "sub": .string("user_1"), "iss": .string("https://clerk.example.com"), "azp": .string("https://app.example.com"),
            "exp": .integer(now.secondsSinceEpoch + 60), "iat": .integer(now.secondsSinceEpoch), "nbf": .integer(now.secondsSinceEpoch),
        ]
        all.merge(claims) { _, new in new }
        return try clerk.sign(
            header: .object(["alg": .string(alg), "kid": .string("ins_local"), "typ": .string("JWT")]), claims: .object(all))
    }

    @Test func networklessPEM_verifiesTokens_withOrWithoutKid() async throws {
        let verifier = ClerkSessionVerifier(
            issuer: "https://clerk.example.com", authorizedParties: [], keys: StaticJWKS(only: try RSAPublicKey(pem: clerk.publicKeyPEM)),
            clock: FixedClock(time: now))
        let session = try await verifier.verify(try token())
        #expect(session.userId == "user_1")
        let noKid = try clerk.sign(header: .object(["alg": .string("RS384")]), claims: try JWT(try token()).claims)
        #expect(try await verifier.verify(noKid).userId == "user_1")
    }

    @Test func authorizedParties_areEnforcedOnlyWhenConfigured() async throws {
        let open = ClerkSessionVerifier(
            issuer: "https://clerk.example.com", authorizedParties: [], keys: clerk.keys, clock: FixedClock(time: now))
        let strict = ClerkSessionVerifier(
            issuer: "https://clerk.example.com", authorizedParties: ["https://other.example.com"], keys: clerk.keys,
            clock: FixedClock(time: now))
        #expect(try await open.verify(try token()).authorizedParty == "https://app.example.com")
        await expectCode(.unauthenticated) { try await strict.verify(try token()) }
    }

    var verifier: ClerkSessionVerifier {
        ClerkSessionVerifier(issuer: "https://clerk.example.com", authorizedParties: [], keys: clerk.keys, clock: FixedClock(time: now))
    }

    /// v1 tokens carry `org_id`/`org_role`; v2 (`v: 2`) carry `o: {id, rol}` with the role
    /// short of its `org:` prefix: both read as the same organization and role.
    @Test func activeOrganization_readsFromV1AndV2Claims_alike() async throws {
        let v1 = try await verifier.verify(
            try token(["org_id": .string("org_1"), "org_role": .string("org:admin"), "org_slug": .string("acme")]))
        let v2 = try await verifier.verify(
            try token([
                "v": .integer(2),
                "o": .object(["id": .string("org_1"), "rol": .string("admin"), "slg": .string("acme"), "per": .string("")]),
            ]))
        #expect(v1.organization == .init(id: "org_1", role: "org:admin"))
        #expect(v2.organization == v1.organization)
        let custom = try await verifier.verify(
            try token(["v": .integer(2), "o": .object(["id": .string("org_1"), "rol": .string("billing")])]))
        #expect(custom.organization?.role == "org:billing")
    }

    @Test func personalSession_hasNoOrganization() async throws {
        #expect(try await verifier.verify(try token(["v": .integer(2)])).organization == nil)
    }

    @Test(arguments: [
        ["o": JSONValue.object(["id": .string("org_1")])], ["org_id": .string("org_1")],
        ["o": .object(["id": .string("org/../x"), "rol": .string("admin")])], ["org_id": .integer(7), "org_role": .string("org:admin")],
    ])
    func organizationClaims_notInClerksShape_areRefused(claims: [String: JSONValue]) async throws {
        await expectCode(.unauthenticated) { try await verifier.verify(try token(claims)) }
    }
}
