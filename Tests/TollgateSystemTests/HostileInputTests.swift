import Foundation
import Logging
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport
import TollgateTesting

@testable import AuthValidator
@testable import TollgateEmulator
@testable import UsageExport
@testable import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The findings of issue 13 — an attacker's inputs that trapped a process, widened a gate
/// or crossed tenants — each pinned by a test that failed before the fix.
@Suite struct HostileInputTests {
    static let now = Timestamp(rfc3339: "2026-01-15T10:00:00Z")!

    static func usage(_ fields: [String: JSONValue]) -> Data {
        var event: [String: JSONValue] = [
            "requestId": .string("r1"), "accountId": .string("acct_1"), "time": .string("2026-01-15T09:59:00Z"),
            "endpoint": .string("/v1/x"), "units": .integer(1),
        ]
        event.merge(fields) { _, new in new }
        return Data(JSONValue.object(event).rendered().utf8)
    }

    // MARK: - Numbers from outside have bounds

    @Test(arguments: [Int64.max, Int64.max - 1, 1_000_000_001, -1, Int64.min])
    func usageQuantities_outsideTheirBounds_areInvalid(value: Int64) async {
        for field in ["units", "nodes", "nodeDimensionUnits"] {
            await expectCode(.invalidArgument) { try UsageEvents.decode(Self.usage([field: .integer(value)]), now: Self.now) }
        }
    }

    @Test func usageQuantities_atTheirBounds_areAccepted() throws {
        let records = try UsageEvents.decode(
            Self.usage(["units": .integer(1_000_000_000), "nodes": .integer(0), "nodeDimensionUnits": .integer(1_000_000_000)]),
            now: Self.now)
        #expect(records.first?.units == 1_000_000_000)
    }

    @Test(arguments: [
        "2026-02-31T00:00:00Z", "2025-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2026-01-15T10:00:00+99:59", "2026-01-15T10:00:00+24:00",
        "2026-01-15T10:00:60Z", "2026-01-15T10:00:00-00:60", "2026-13-01T00:00:00Z", "2026-01-15 10:00:00Z",
    ])
    func impossibleTimes_areNotRFC3339Instants(text: String) async {
        #expect(Timestamp(rfc3339: text) == nil)
        await expectCode(.invalidArgument) { try UsageEvents.decode(Self.usage(["time": .string(text)]), now: Self.now) }
    }

    @Test func leapDay_andFirestoresBounds_parse() {
        #expect(Timestamp(rfc3339: "2028-02-29T00:00:00Z") != nil)
        #expect(Timestamp(rfc3339: "0001-01-01T00:00:00Z") == Timestamp.earliest)
        #expect(Timestamp(rfc3339: "9999-12-31T23:59:59.999999Z") == Timestamp.latest)
        #expect(Timestamp(rfc3339: "0001-01-01T00:00:00+00:01") == nil, "before year 1 once the offset is applied")
    }

    @Test func usageTimes_outsideTheWindow_areInvalid_insideAreAccepted() async throws {
        let tooNew = Self.now.adding(seconds: 7 * 86_400 + 1).rfc3339
        for text in ["1999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", tooNew] {
            await expectCode(.invalidArgument) { try UsageEvents.decode(Self.usage(["time": .string(text)]), now: Self.now) }
        }
        for text in ["2000-01-01T00:00:00Z", Self.now.adding(seconds: 7 * 86_400).rfc3339] {
            #expect(try UsageEvents.decode(Self.usage(["time": .string(text)]), now: Self.now).count == 1)
        }
    }

    @Test func timestamps_fromExtremeUnixSeconds_areRefused_andAddingSaturates() {
        for seconds in [Int64.max, Int64.min, Timestamp.unixSecondsRange.upperBound + 1, Timestamp.unixSecondsRange.lowerBound - 1] {
            #expect(Timestamp(unixSeconds: seconds) == nil)
        }
        #expect(Timestamp(unixSeconds: 0) == Timestamp(secondsSinceEpoch: 0))
        #expect(Self.now.adding(seconds: .max).microsecondsSinceEpoch == .max)
        #expect(Self.now.adding(seconds: .min).microsecondsSinceEpoch == .min)
        #expect(Self.now.adding(seconds: .min).rfc3339 == "0001-01-01T00:00:00Z", "rendered clamped, not trapped")
        #expect(Self.now.adding(seconds: .max).rfc3339 == "9999-12-31T23:59:59.999999Z")
    }

    /// A validly signed Clerk token with `exp = Int64.max` trapped in `exp + skew`; the
    /// same check verifies Google's OIDC tokens.
    @Test(arguments: ["exp", "nbf", "iat"])
    func signedTokenTimes_atInt64Extremes_areUnauthenticated(claim: String) async throws {
        let issuer = try LocalOIDCIssuer(keyID: "k1")
        let verifier = ClerkSessionVerifier(
            issuer: "https://clerk.test", authorizedParties: [], keys: StaticJWKS(keys: ["k1": try RSAPublicKey(pem: issuer.publicKeyPEM)]),
            clock: FixedClock(time: Self.now))
        for extreme in [Int64.max, Int64.min, Int64.max - 4] {
            var claims: [String: JSONValue] = [
                "sub": .string("user_1"), "iss": .string("https://clerk.test"), "exp": .integer(Self.now.secondsSinceEpoch + 60),
            ]
            claims[claim] = .integer(extreme)
            let token = try issuer.sign(header: .object(["alg": .string("RS256"), "kid": .string("k1")]), claims: .object(claims))
            await expectCode(.unauthenticated) { try await verifier.verify(token) }
        }
    }

    @Test func tokens_withCrit_orATypOtherThanJWT_areUnauthenticated() async throws {
        let issuer = try LocalOIDCIssuer(keyID: "k1")
        let claims: JSONValue = .object([
            "sub": .string("user_1"), "iss": .string("https://clerk.test"), "exp": .integer(Self.now.secondsSinceEpoch + 60),
        ])
        for header: JSONValue in [
            .object(["alg": .string("RS256"), "kid": .string("k1"), "crit": .array([.string("b64")]), "b64": .bool(false)]),
            .object(["alg": .string("RS256"), "kid": .string("k1"), "typ": .string("at+jwt")]),
        ] {
            let token = try issuer.sign(header: header, claims: claims)
            await expectCode(.unauthenticated) { try JWT(token) }
        }
        let plain = try issuer.sign(
            header: .object(["alg": .string("RS256"), "kid": .string("k1"), "typ": .string("jwt")]), claims: claims)
        #expect(throws: Never.self) { try JWT(plain) }
    }

    /// `current_period_end = Int64.max` in a signed subscription crashed the webhook in a loop.
    @Test(arguments: ["current_period_end", "current_period_start", "trial_end"])
    func stripeSubscriptionTimes_outOfRange_areInvalidArgument(field: String) async {
        let object: JSONValue = .object([
            "object": .string("subscription"), "id": .string("sub_1"), "customer": .string("cus_1"), "status": .string("active"),
            field: .integer(.max),
        ])
        await expectCode(.invalidArgument) { try StripeSubscription(object) }
    }

    @Test func stripeEvent_createdOutOfRange_isInvalidArgument() async {
        let body = #"{"id":"evt_1","object":"event","type":"x","created":-9223372036854775808,"data":{"object":{}}}"#
        await expectCode(.invalidArgument) { try StripeEvent(json: Data(body.utf8)) }
    }

    @Test func enterpriseLimits_outOfBounds_fallBackToTheTierDefault() {
        let overrides = EnterpriseOverrides(metadata: [
            "tollgate_monthly_quota_units": String(Int64.max), "tollgate_max_nodes": "1000000000000000",
        ])
        #expect(overrides.monthlyQuotaUnits == nil)
        #expect(overrides.maxNodes == 1_000_000_000_000_000)
    }

    /// Two ledger records at Int64.max (written before the bounds) trapped the part
    /// writer and halted every later export; the recorder now refuses such units, and an
    /// export meeting one left from before stops with an error naming the entry (a person
    /// corrects it), writing no export record.
    @Test func export_ofALedgerWhoseSumsOverflow_failsClearly_withoutATrap() async throws {
        let clock = FixedClock(time: Timestamp(rfc3339: "2026-01-03T00:00:00Z")!)
        let database = try temporaryDatabase(clock: clock)
        let store = SQLiteDocumentStore(database)
        for index in 0..<2 {
            let record = UsageRecord(
                requestId: "r\(index)", accountId: "acct_1", keyId: nil, time: Timestamp(rfc3339: "2026-01-01T10:00:00Z")!,
                endpoint: "/", units: .max, recorded: Timestamp(rfc3339: "2026-01-01T10:00:0\(index)Z")!)
            try await store.create(
                try DocumentPath(collection: UsageRecord.collection, id: record.ledgerID), try FieldValueEncoder().encode(record))
        }
        let exporter = UsageExporter(
            configuration: .init(reportQueue: "usage-reports", reportURL: "http://report.local/"), store: store,
            blobs: SQLiteBlobStore(database), tasks: SQLiteTaskQueue(database), signer: exportTestSigner, clock: clock)
        let error = await expectCode(.failedPrecondition) { try await exporter.export(UTCDay("2026-01-01")!) }
        #expect(error?.message.contains("usage/acct_1:r0") == true, "\(error?.message ?? "")")
        #expect(try await store.get(try DocumentPath(collection: ExportState.collection, id: "2026-01-01")) == nil)
    }

    // MARK: - Identifiers are bytes

    static let nfc = "user_caf\u{E9}"
    static let nfd = "user_cafe\u{301}"

    @Test func documentPaths_differingOnlyInNormalisation_areTwoDocuments() throws {
        #expect(Self.nfc == Self.nfd, "Swift's String equates them")
        let a = try DocumentPath(collection: "users", id: Self.nfc)
        let b = try DocumentPath(collection: "users", id: Self.nfd)
        #expect(a != b)
        #expect(Set([a, b]).count == 2)
        #expect(b < a, "Firestore orders ids by their UTF-8 bytes: 'e' (65) before C3")
    }

    @Test func metadataCache_keysByBytes_soNFDNeverReadsNFCsEntry() async throws {
        let cache = MetadataCache<String?>(ttlSeconds: 60, clock: FixedClock(time: Self.now), isMiss: { $0 == nil })
        #expect(try await cache.value(Self.nfc) { "acct_A" } == "acct_A")
        #expect(try await cache.value(Self.nfd) { "acct_B" } == "acct_B")
        #expect(try await cache.value(Self.nfc) { "reloaded" } == "acct_A")
    }

    /// A flood of unknown keys emptied the whole cache; misses now evict only misses.
    @Test func metadataCache_floodOfMisses_neverEvictsFoundEntries_andStaysBounded() async throws {
        let cache = MetadataCache<String?>(ttlSeconds: 60, capacity: 100, clock: FixedClock(time: Self.now), isMiss: { $0 == nil })
        for index in 0..<50 { _ = try await cache.value("known_\(index)") { "acct_\(index)" } }
        for index in 0..<10_000 { _ = try await cache.value("unknown_\(index)") { nil } }
        #expect(cache.counts.found == 50)
        #expect(cache.counts.missed <= 100)
        for index in 0..<50 { #expect(try await cache.value("known_\(index)") { "reloaded" } == "acct_\(index)") }
    }

    /// Stripe metadata naming `acct_A\u{0}x` upgraded `accounts/acct_A`: the fake cut the id
    /// at the NUL. It keeps the whole id now, as Firestore does.
    @Test func sqliteFake_keepsIdsWithNUL_andU0001_whole() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase())
        try await store.set(try DocumentPath(collection: "accounts", id: "acct_A"), ["tier": .string("free")])
        try await store.set(try DocumentPath(collection: "accounts", id: "acct_A\u{0}x"), ["tier": .string("enterprise")])
        try await store.set(try DocumentPath(collection: "accounts", id: "acct_A\u{1}"), ["tier": .string("pro")])
        try await store.set(try DocumentPath(collection: "accounts", id: Self.nfd), ["tier": .string("nfd")])
        #expect(try await store.get(try DocumentPath(collection: "accounts", id: "acct_A"))?.fields["tier"] == .string("free"))
        #expect(try await store.get(try DocumentPath(collection: "accounts", id: "acct_A\u{0}x"))?.fields["tier"] == .string("enterprise"))
        #expect(try await store.get(try DocumentPath(collection: "accounts", id: Self.nfc)) == nil)
        let ids = try await store.query(DocumentQuery(collection: "accounts").order(by: "__name__")).map(\.path.id)
        #expect(ids.map { Array($0.utf8) } == ["acct_A", "acct_A\u{0}x", "acct_A\u{1}", Self.nfd].map { Array($0.utf8) })
    }

    // MARK: - The ledger dedupes per account

    @Test func ledgerIDs_escapeTheSeparator_soNoTwoPairsShareOne() {
        #expect(UsageRecord.ledgerID(accountId: "acct_1", requestId: "req_9") == "acct_1:req_9")
        #expect(UsageRecord.ledgerID(accountId: "a:b", requestId: "c") != UsageRecord.ledgerID(accountId: "a", requestId: "b:c"))
        #expect(UsageRecord.ledgerID(accountId: "a%3Ab", requestId: "c") != UsageRecord.ledgerID(accountId: "a:b", requestId: "c"))
    }

    /// Account B's event carrying account A's request id was recorded, and A's own event
    /// was then dropped as a duplicate.
    @Test func twoAccounts_sameRequestId_areBothRecorded_andEachOnlyOnce() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase(clock: FixedClock(time: Self.now)))
        let recorder = try RecorderHarness(store: store)
        func deliver(_ account: String, _ units: Int64) async throws -> Int {
            try await recorder.push(Self.usage(["accountId": .string(account), "requestId": .string("shared"), "units": .integer(units)]))
        }
        #expect(try await deliver("acct_B", 1) == 200)
        #expect(try await deliver("acct_A", 500) == 200)
        #expect(try await deliver("acct_A", 500) == 200)
        let counters = try await store.get(path("usageCounters/acct_A"))?.decode(UsageCounters.self)
        #expect(counters?.units == 500)
        #expect(try await store.get(path("usageCounters/acct_B"))?.decode(UsageCounters.self).units == 1)
        #expect(try await store.query(DocumentQuery(collection: UsageRecord.collection)).count == 2)
    }

    /// A message recorded before the ledger was keyed by account and redelivered after
    /// the upgrade is not counted twice; another account's legacy entry does not block.
    @Test func legacyLedgerEntry_ofTheSameAccount_dedupes_ofAnotherDoesNot() async throws {
        let store = SQLiteDocumentStore(try temporaryDatabase(clock: FixedClock(time: Self.now)))
        let legacy = UsageRecord(requestId: "old", accountId: "acct_A", keyId: nil, time: Self.now, endpoint: "/", units: 5)
        try await store.create(path("usage/old"), try FieldValueEncoder().encode(legacy))
        let recorder = try RecorderHarness(store: store)
        for account in ["acct_A", "acct_B"] {
            #expect(
                try await recorder.push(Self.usage(["accountId": .string(account), "requestId": .string("old"), "units": .integer(5)]))
                    == 200)
        }
        #expect(try await store.get(path("usage/acct_A:old")) == nil)
        #expect(try await store.get(path("usage/acct_B:old")) != nil)
    }

    // MARK: - JSON

    /// Duplicate keys were read last-wins or first-wins depending on whether a fractional
    /// number stood elsewhere in the body.
    @Test(arguments: [#"{"a":1,"a":2}"#, #"{"a":1,"a":2,"b":0.5}"#, #"{"b":1e3,"a":1,"a":2}"#, #"{"n":{"a":1,"a":2},"f":2.5}"#])
    func duplicateKeys_lastWins_whateverElseTheBodyHolds(text: String) throws {
        let value = try JSONValue.parse(Data(text.utf8))
        #expect(value["a"] == .integer(2) || value["n"]?["a"] == .integer(2))
    }

    @Test func numbers_readAsBefore_andHugeOnesAreRefused() async throws {
        #expect(try JSONValue.parse(Data("1.0".utf8)) == .integer(1))
        #expect(try JSONValue.parse(Data("1e2".utf8)) == .integer(100))
        #expect(try JSONValue.parse(Data("2.5".utf8)) == .double(2.5))
        #expect(try JSONValue.parse(Data("9223372036854775808".utf8)) == .double(9_223_372_036_854_775_808))
        for text in ["1e999", "-1e999", "01", "1.", ".5", "1e", "+1", "--1"] {
            await expectCode(.invalidArgument) { try JSONValue.parse(Data(text.utf8)) }
        }
    }
}

extension HostileInputTests {
    /// usage-recorder in process, behind the runtime, with Pub/Sub's OIDC token.
    struct RecorderHarness {
        let host: FunctionHost<UsageRecorderFunction>
        let clock = FixedClock(time: HostileInputTests.now)

        init(store: any DocumentStore) throws {
            let verifier = OIDCVerifier(
                issuers: [LocalOIDCIssuer.issuer], audiences: ["https://usage-recorder.test"],
                allowedEmails: [LocalOIDCIssuer.serviceAccount],
                keys: sharedIssuer.keys, clock: clock)
            host = FunctionHost(
                handler: UsageRecorderFunction(store: store), store: store, clock: clock, verifier: verifier, logger: capturingLogger().0)
        }

        /// Pushes one message holding `data`; returns the status.
        func push(_ data: Data) async throws -> Int {
            let token = try sharedIssuer.token(audience: "https://usage-recorder.test", issuedAt: clock.now())
            let body = Data(
                #"{"message":{"data":"\#(data.base64EncodedString())","messageId":"\#(UUID().uuidString)","publishTime":"2026-01-15T10:00:00Z"},"subscription":"projects/p/subscriptions/s"}"#
                    .utf8)
            let request = FunctionRequest(
                method: "POST", path: "/", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: body
            )
            return await host.handle(request).status
        }
    }
}
