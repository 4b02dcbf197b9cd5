import AuthValidator
import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting
import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct APIKeyTests {
    @Test func generatedKeys_haveThePrefix_and190BitsOfBase62() {
        let keys = (0..<200).map { _ in APIKeys.generate(mode: .live) }
        #expect(Set(keys).count == 200)
        for key in keys {
            #expect(key.hasPrefix("tg_live_"))
            #expect(key.count == 40)
            #expect(APIKeys.isWellFormed(key))
        }
        #expect(APIKeys.generate(mode: .test).hasPrefix("tg_test_"))
        // 32 characters of a 62-letter alphabet: log2(62) * 32 ≈ 190.5 bits.
        #expect(log2(62.0) * 32 >= 160)
    }

    @Test(arguments: [
        "", "tg_live_", "tg_live_short", "tg_prod_" + String(repeating: "a", count: 32), "tg_live_" + String(repeating: "-", count: 32),
    ])
    func malformedKeys_areRecognised(_ text: String) {
        #expect(!APIKeys.isWellFormed(text))
    }

    @Test func hashes_dependOnThePepper() throws {
        let key = APIKeys.generate(mode: .live)
        let a = try APIKeys(pepper: String(repeating: "a", count: 32))
        let b = try APIKeys(pepper: String(repeating: "b", count: 32))
        #expect(a.hash(key) == a.hash(key))
        #expect(a.hash(key) != b.hash(key))
        #expect(a.hash(key).count == 64)
        #expect(throws: TollgateError.self) { try APIKeys(pepper: "short") }
    }
}

@Suite struct QuotaPeriodTests {
    func at(_ text: String) -> Timestamp { Timestamp(rfc3339: text)! }

    @Test func month_windowsAreCalendarMonthsInUTC() {
        let (start, end) = QuotaPeriod.month.window(containing: at("2026-12-31T23:59:59Z"), billing: nil)
        #expect(start == at("2026-12-01T00:00:00Z"))
        #expect(end == at("2027-01-01T00:00:00Z"))
    }

    @Test func day_windowsAreUTCDays() {
        let (start, end) = QuotaPeriod.day.window(containing: at("2026-03-08T01:30:00Z"), billing: nil)
        #expect(start == at("2026-03-08T00:00:00Z"))
        #expect(end == at("2026-03-09T00:00:00Z"))
    }

    @Test func billingPeriod_pastItsEnd_stepsByMonthsAnchoredOnTheDay_clampedToShortMonths() {
        let billing = BillingState(
            customerId: "c", subscriptionId: "s", priceId: nil, status: .active, currentPeriodStart: at("2027-12-31T09:00:00Z"),
            currentPeriodEnd: at("2028-01-31T09:00:00Z"), cancelAtPeriodEnd: false, trialEnd: nil, lastEventCreated: 0, lastEventId: "e")
        #expect(
            QuotaPeriod.billingPeriod.window(containing: at("2028-01-10T00:00:00Z"), billing: billing) == (
                at("2027-12-31T09:00:00Z"), at("2028-01-31T09:00:00Z")
            ))
        let leap = QuotaPeriod.billingPeriod.window(containing: at("2028-02-10T00:00:00Z"), billing: billing)
        #expect(leap == (at("2028-01-31T09:00:00Z"), at("2028-02-29T09:00:00Z")), "2028 is a leap year")
        #expect(QuotaPeriod.billingPeriod.window(containing: at("2026-01-10T00:00:00Z"), billing: nil).start == at("2026-01-01T00:00:00Z"))
    }

    @Test func upgradeRaisesTheLimitAtOnce_downgradeWaitsForTheNextWindow() {
        let window = QuotaWindow(start: at("2026-01-01T00:00:00Z"), end: at("2026-02-01T00:00:00Z"), limit: 15_000, used: 10)
        let free = TierCatalog.standard.entitlements(for: .free)
        let enterprise = TierCatalog.standard.entitlements(for: .enterprise)
        #expect(window.effectiveLimit(entitlements: enterprise) == 1_000_000)
        #expect(window.effectiveLimit(entitlements: free) == 15_000)
    }
}

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
}

@Suite struct UsageEventTests {
    @Test func moreThan150EventsInOneMessage_isPoison() async throws {
        let events = (0...150).map { i in
            JSONValue.object([
                "requestId": .string("r\(i)"), "accountId": .string("a"), "time": .string("2026-01-01T00:00:00Z"),
                "endpoint": .string("/"), "units": .integer(1),
            ])
        }
        let data = Data(JSONValue.array(events).rendered().utf8)
        let now = Timestamp(rfc3339: "2026-01-01T00:05:00Z")!
        await expectCode(.invalidArgument) { try UsageEvents.decode(data, now: now) }
        #expect(try UsageEvents.decode(Data(JSONValue.array(Array(events.prefix(150))).rendered().utf8), now: now).count == 150)
    }
}

/// The key life cycle through the real command line and the real auth-validator.
@Suite(.serialized) struct KeyCommandTests {
    @Test func create_list_revoke_throughTheCommandLine_andTheValidator() async throws {
        let directory = scratchURL("keys")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pepper = "pepper-for-the-key-command-test-0123456789"
        let environment = ["TOLLGATE_STORE": "sqlite://\(directory.path)/state.db", "TOLLGATE_KEY_PEPPER": pepper]

        let (created, key, note) = try runTollgate(["keys", "create", "--account", "acct_7", "--name", "ci"], environment: environment)
        #expect(created == 0, "\(note)")
        let plaintext = key.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(APIKeys.isWellFormed(plaintext))
        let state = try await SQLiteDatabase(path: directory.appendingPathComponent("state.db").path).stateDump().rendered()
        #expect(!state.contains(plaintext), "only the keyed hash is stored")

        let (_, listing, _) = try runTollgate(["keys", "list", "--account", "acct_7"], environment: environment)
        #expect(listing.contains(APIKeys.displayPrefix(of: plaintext)))
        #expect(listing.contains("active"))
        #expect(!listing.contains(plaintext))

        let validator = try await RunningFunction(
            "auth-validator", environment: environment.merging(["TOLLGATE_CACHE_TTL": "0"]) { a, _ in a })
        #expect(try await post(validator.url, body: Data(), headers: ["X-API-Key": plaintext]).0 == 200)

        let (revoked, said, _) = try runTollgate(["keys", "revoke", APIKeys.displayPrefix(of: plaintext)], environment: environment)
        #expect(revoked == 0)
        #expect(said.contains("revoked"))
        let (status, body) = try await post(validator.url, body: Data(), headers: ["X-API-Key": plaintext])
        #expect(status == 401)
        #expect(try JSONValue.parse(body)["code"] == .string("REVOKED"))
        #expect(try runTollgate(["keys", "revoke", plaintext], environment: environment).1.contains("already revoked"))
        #expect(try runTollgate(["keys", "revoke", "tg_live_nope"], environment: environment).0 != 0)
        #expect(!validator.log.contains(plaintext), "keys never reach the log")
        #expect(try await validator.stop() == 0)
    }
}

/// Four auth-validator processes share one SQLite store; many concurrent requests at an
/// account with a limit of 1000 admit exactly 1000.
@Suite(.serialized) struct QuotaConcurrencyTests {
    @Test func fourProcesses_admitExactlyTheLimit() async throws {
        let directory = scratchURL("quota")
        let database = try SQLiteDatabase(path: directory.appendingPathComponent("state.db").path)
        let pepper = "pepper-for-the-concurrency-test-0123456789"
        let store = SQLiteDocumentStore(database)
        let key = try await seedKeyedAccount(store, id: "acct_load", units: 1_000, pepper: pepper)

        let environment = ["TOLLGATE_STORE": "sqlite://\(database.path)", "TOLLGATE_KEY_PEPPER": pepper]
        var validators: [RunningFunction] = []
        for _ in 0..<4 { validators.append(try await RunningFunction("auth-validator", environment: environment)) }
        let urls = validators.map(\.url)

        let requests = 1_300
        let statuses = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<32 {
                group.addTask {
                    var index = worker
                    while index < requests {
                        // A gateway retries a 503 (contention) on another instance.
                        var attempt = 0
                        while true {
                            let (status, _) = try await post(
                                urls[(index + attempt) % urls.count], body: Data(), headers: ["X-API-Key": key])
                            statuses.append(status)
                            if status == 503 {
                                attempt += 1
                                continue
                            }
                            break
                        }
                        index += 32
                    }
                }
            }
            try await group.waitForAll()
        }
        let all = statuses.all
        #expect(all.filter { $0 == 200 }.count == 1_000)
        #expect(all.filter { $0 == 429 }.count == 300)
        #expect(all.allSatisfy { [200, 429, 503].contains($0) })
        let window = try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self)
        #expect(window?.used == 1_000, "no consumption lost, none doubled")
        for validator in validators { #expect(try await validator.stop() == 0) }
        print("quota concurrency: 4 processes, \(requests) requests, \(all.filter { $0 == 503 }.count) retries after contention")
    }
}

@Suite struct InvalidationPushTests {
    func host() throws -> (FunctionHost<AuthValidatorFunction>, HostFixture<RecordingPubSubFunction>) {
        let fixture = try HostFixture(RecordingPubSubFunction())
        let verifier = OIDCVerifier(
            issuers: OIDCVerifier.googleIssuers, audiences: [HostFixture<RecordingPubSubFunction>.audience],
            allowedEmails: ["pubsub-push@tollgate-prod.iam.gserviceaccount.com"], keys: sharedIssuer.keys,
            clock: FixedClock(time: fixture.now))
        let configuration = AuthValidatorFunction.Configuration(keys: try APIKeys(pepper: String(repeating: "p", count: 32)), clerk: nil)
        let handler = AuthValidatorFunction(
            configuration: configuration, store: fixture.store, clock: FixedClock(time: fixture.now), invalidationVerifier: verifier)
        let host = FunctionHost(
            handler: handler, store: fixture.store, clock: FixedClock(time: fixture.now), verifier: nil, logger: capturingLogger().0)
        return (host, fixture)
    }

    func push(_ host: FunctionHost<AuthValidatorFunction>, data: String, token: String?) async -> Int {
        let envelope =
            #"{"message":{"data":"\#(Data(data.utf8).base64EncodedString())","messageId":"1","publishTime":"2026-01-01T00:00:00Z"},"subscription":"s"}"#
        let headers = token.map { [(name: "Authorization", value: "Bearer \($0)")] } ?? []
        return await host.handle(
            FunctionRequest(method: "POST", path: AuthValidatorFunction.invalidationPath, headers: headers, body: Data(envelope.utf8))
        ).status
    }

    @Test func push_isAuthenticated_andUnreadableMessagesAreAcknowledged() async throws {
        let (host, fixture) = try host()
        #expect(await push(host, data: #"{"accountId":"acct_1"}"#, token: nil) == 401)
        #expect(await push(host, data: #"{"accountId":"acct_1"}"#, token: try fixture.token()) == 204)
        #expect(await push(host, data: "not json", token: try fixture.token()) == 204, "a nack would only redeliver it")
        #expect(try await fixture.deadLetters().isEmpty)
    }
}
