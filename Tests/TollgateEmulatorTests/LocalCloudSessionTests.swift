import Foundation
import Synchronization
import Testing
import TollgateAuth
import TollgateEmulator
import TollgateExport
import TollgateJOSE
import TollgateModel
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A scripted session against `tollgate serve`, as a developer drives it: the real
/// command line, the real functions, one state file.
@Suite(.serialized) struct LocalCloudSessionTests {
    static func file(_ contents: String) throws -> String {
        let url = scratchURL("message", extension: "json")
        try Data(contents.utf8).write(to: url)
        return url.path
    }

    static func usageEvent(_ id: String, units: Int, account: String = "cus_TgAlpha01") -> String {
        """
        {"requestId": "\(id)", "accountId": "\(account)", "keyId": "tg_live_AbCd", "time": "2026-01-01T08:00:00Z", \
        "endpoint": "/v1/graphs", "units": \(units), "nodes": 1, "nodeDimensionUnits": 1}
        """
    }

    static func documents(_ state: JSONValue, in collection: String) -> [String] {
        (state["documents"]?.objectValue ?? [:]).keys.filter { $0.hasPrefix(collection + "/") }.sorted()
    }

    @Test func scriptedSession_onTheVirtualClock_showsEffectsRetriesAndDeadLetters() async throws {
        let serve = try await ServeProcess(["--clock", "virtual", "--start", "2026-01-01T08:00:00Z"])
        for function in EmulatedFunction.names {
            #expect(serve.output.contains("\(serve.url)/\(function)/"), "the banner lists \(function)")
        }
        #expect(serve.output.contains("Scheduler \"*/10 * * * *\" Etc/UTC, next 2026-01-01T08:10:00Z"))

        // Stripe calls the webhook: Pro for cus_TgAlpha01; the function's own publish of
        // entitlements-changed is pushed to auth-validator.
        let payload = try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/subscription-created-pro.json"))
        let secret = try #require(LocalEnvironment.webhookSecrets["current"])
        let signed = StripeSigner(secret: secret).header(
            timestamp: Timestamp(rfc3339: "2026-01-01T08:00:00Z")!.secondsSinceEpoch, body: payload)
        let webhook = try await curl("POST", "\(serve.url)/stripe-webhook/", headers: ["Stripe-Signature": signed], body: payload)
        #expect(webhook.status == 200)
        var state = try await serve.waitFor("the entitlements push") {
            $0["pushDeliveries"]?.objectValue?.keys.contains { $0.hasPrefix("auth-validator-entitlements-changed/") } == true
        }
        #expect(state["documents"]?["accounts/cus_TgAlpha01"]?["tier"]?.stringValue == "pro")
        #expect(
            state["pushDeliveries"]?.objectValue?.first { $0.key.hasPrefix("auth-validator-entitlements-changed/") }?.value["state"]?
                .stringValue == "acked")

        // The API service publishes usage; one message is poison; then usage-recorder is
        // down for ten deliveries while a message arrives.
        try await serve.tollgate(["publish", "usage-events", "--data", try Self.file(Self.usageEvent("req_1", units: 5))])
        try await serve.tollgate([
            "publish", "usage-events", "--data", try Self.file(Self.usageEvent("req_2", units: 7)), "--attribute", "origin=test",
        ])
        try await serve.tollgate(["publish", "usage-events", "--data", try Self.file("not json")])
        state = try await serve.waitFor("two ledger entries and a dead letter") {
            Self.documents($0, in: "usage").count == 2 && Self.documents($0, in: "deadLetters").count == 1
        }
        #expect(state["documents"]?["usageCounters/cus_TgAlpha01"]?["units"]?.integerValue == 12)
        try await serve.tollgate(["outage", "usage-recorder", "--status", "503", "--deliveries", "10"])
        let lost = try await serve.tollgate(["publish", "usage-events", "--data", try Self.file(Self.usageEvent("req_3", units: 100))])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await serve.tollgate(["publish", "no-such-topic", "--data", try Self.file("{}")], expectStatus: 64)

        // Time passes: redeliveries back off until the dead-letter topic takes the message;
        // the scheduler runs quota-reset every 10 minutes.
        try await serve.tollgate(["clock", "advance", "1h"])
        state = try await serve.dump()
        let delivery = state["pushDeliveries"]?["usage-recorder-usage-events/\(lost)"]
        #expect(delivery?["state"]?.stringValue == "dead-lettered")
        #expect(delivery?["attempts"]?.integerValue == 10)
        #expect(state["documents"]?["usage/cus_TgAlpha01:req_3"] == nil)
        let database = try SQLiteDatabase(path: serve.state)
        let letters = try await SQLitePublisher(database).published(topic: "usage-recorder-usage-events-dead-letter")
        #expect(letters.map(\.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"]) == ["10"])
        #expect(serve.output.contains("dead-lettered to usage-recorder-usage-events-dead-letter"))
        let (_, listed, _) = try await runTollgate(["dead-letters", "list", "--store", "sqlite://\(serve.state)"], environment: [:])
        #expect(listed.contains("1 dead letter\n"), "the poison message, set aside by usage-recorder")
        #expect(listed.contains("from usage-recorder-usage-events after 10 deliveries"), "the message Pub/Sub gave up on")
        #expect(serve.output.contains("quota-reset 2026-01-01T09:00:00Z"), "the job ran on its schedule")

        // A job by hand, then the day ends: usage-export at 00:30 exports the day and
        // enqueues a report task; Stripe's side of usage-report fails twice first.
        #expect(try await serve.tollgate(["trigger", "quota-reset"]).contains("quota-reset: ran at 2026-01-01T09:00:00Z"))
        try await serve.tollgate(["trigger", "nightly"], expectStatus: 64)
        try await serve.tollgate(["outage", "usage-report", "--status", "503", "--deliveries", "2"])
        #expect(try await serve.tollgate(["clock", "advance", "1d"]).contains("2026-01-02T09:00:00Z"))
        state = try await serve.dump()
        #expect(state["objects"]?["usage/2026/01/01/manifest.json"] != nil)
        // Signed with this state's own key, which `tollgate export public-key` describes.
        let (described, document, _) = try await runTollgate(
            ["export", "public-key"], environment: ["TOLLGATE_STORE": "sqlite://\(serve.state)"])
        let key = try ExportPublicKey(document: Array(document.utf8))
        #expect(described == 0 && state["objects"]?["usage/keys/\(key.keyId).json"] != nil, "\(document)")
        #expect(key.keyId != (try ExportSigner(base64: LocalEnvironment.exportSigningKey)).keyId, "not the replays' published key")
        let task = try #require(state["tasks"]?.objectValue?.first { $0.key.hasPrefix("usage-reports/") })
        #expect(task.value["state"]?.stringValue == "succeeded")
        let meter = try #require(state["stripeMeterEvents"]?.objectValue?.values.first)
        #expect(meter["customer"]?.stringValue == "cus_TgAlpha01" && meter["value"]?.stringValue == "12")
        let reportLines = serve.lines.all.filter { $0.contains("usage-report ") && $0.contains("cloudtasks") }
        #expect(reportLines.count == 3)
        #expect(reportLines.first?.contains("503") == true && reportLines.last?.contains("attempt 3") == true)

        #expect(try await serve.stop() == 0)
        #expect(serve.output.contains("stopped"))
    }

    @Test func processes_runTheRealExecutables_onTheSharedStateFile() async throws {
        let serve = try await ServeProcess(["--processes", "--ports", "--quiet"])
        let recorder = try #require(
            serve.lines.all.first { $0.contains("usage-recorder") && $0.contains("Pub/Sub") }?.split(separator: " ").first {
                $0.hasPrefix("http")
            })
        #expect(!recorder.contains(serve.url), "--ports gives usage-recorder a port of its own")
        try await serve.tollgate(["publish", "usage-events", "--data", try Self.file(Self.usageEvent("req_p1", units: 3))])
        _ = try await serve.waitFor("the ledger entry") { $0["documents"]?["usage/cus_TgAlpha01:req_p1"] != nil }
        #expect(try await serve.tollgate(["trigger", "cleanup"]).contains("cleanup: ran"))
        // Straight to the function's own port, as a caller without a token: refused.
        let direct = try await curl("POST", String(recorder), headers: [:], body: Data("{}".utf8))
        #expect(direct.status == 401)
        #expect(try await serve.stop() == 0)
    }

    @Test(Peer.pythonVenv.trait)
    func googlesOwnRESTClient_publishesAndRunsJobs_againstServe() async throws {
        let serve = try await ServeProcess(["--clock", "virtual", "--start", "2026-01-01T08:00:00Z"])
        let project = "projects/\(LocalCloudNames.project)"
        let event = Data(Self.usageEvent("req_google", units: 9).utf8).base64EncodedString()
        let calls: JSONValue = .object([
            "endpoint": .string(serve.url + "/"),
            "calls": .array([
                .object([
                    "publish": .string("\(project)/topics/\(Topic.usageEvents)"),
                    "messages": .array([.object(["data": .string(event), "attributes": .object(["origin": .string("python")])])]),
                ]),
                .object(["publish": .string("\(project)/topics/nowhere"), "messages": .array([.object(["data": .string(event)])])]),
                .object(["run": .string("\(project)/locations/europe-west1/jobs/cleanup")]),
            ]),
        ])
        let answers = try #require(try await PythonPeer.run(script: "google_rest_calls.py", input: calls)["answers"]?.arrayValue)
        try #require(answers.count == 3)
        #expect(answers[0]["messageIds"]?.arrayValue?.count == 1)
        #expect(answers[1]["status"]?.integerValue == 404 && answers[1]["error"]?["status"]?.stringValue == "NOT_FOUND")
        #expect(answers[2]["name"]?.stringValue == "\(project)/locations/europe-west1/jobs/cleanup")
        #expect(answers[2]["status"]?.objectValue?.isEmpty == true, "the run succeeded")
        let state = try await serve.waitFor("the usage record") { Self.documents($0, in: "usage") == ["usage/cus_TgAlpha01:req_google"] }
        #expect(state["documents"]?["usageCounters/cus_TgAlpha01"]?["units"]?.integerValue == 9)
        #expect(serve.output.contains("cleanup 2026-01-01T08:00:00Z"), "the job ran when asked")
        #expect(try await serve.stop() == 0)
    }

    /// A dashboard developer's loop against `serve`: a Clerk user delivered as Svix signs
    /// it, a token from `tollgate session`, account-api called through the local cloud, in
    /// process and as real executables (the query reaches the function both ways).
    @Test(arguments: [[], ["--processes"]])
    func accountAPI_isCalledWithATollgateSessionToken(_ mode: [String]) async throws {
        let serve = try await ServeProcess(mode + ["--quiet"])
        let body = try Data(contentsOf: packageRoot.appendingPathComponent("events/clerk/payloads/user-created.json"))
        let signer = try SvixSigner(secret: try #require(LocalEnvironment.svixSecrets["current"]))
        let headers = signer.headers(id: "msg_serve_1", timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let delivered = try await curl(
            "POST", serve.url + "/clerk-webhook/", headers: Dictionary(uniqueKeysWithValues: headers.map { ($0.name, $0.value) }),
            body: body)
        #expect(delivered.status == 200, "\(String(decoding: delivered.body, as: UTF8.self))")

        let token = try await serve.tollgate(["session", "--user", "user_2TgAdaLovelace000001"]).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let usage = try await curl(
            "GET", serve.url + "/account-api/v1/usage?from=2026-01-01&to=2026-01-02", headers: ["Authorization": "Bearer \(token)"],
            body: Data())
        let answer = try JSONValue.parse(usage.body)
        #expect(usage.status == 200 && answer["accountId"] == .string("user_2TgAdaLovelace000001"), "\(answer)")
        #expect(answer["days"]?.arrayValue?.count == 2 && answer["to"] == .string("2026-01-02"))
        // Only well-formed sessions: an id that is no Clerk id is refused, nothing minted.
        try await serve.tollgate(["session", "--user", "not an id"], expectStatus: 64)
        try await serve.tollgate(["session", "--user", "user_1", "--organization", "org 1"], expectStatus: 64)
        try await serve.tollgate(["session", "--user", "user_1", "--organization", "org_1", "--role", "admin"], expectStatus: 64)
        try await serve.tollgate(["session", "--user", "user_1", "--expires-in", "0"], expectStatus: 64)
        let v1 = try await serve.tollgate(["session", "--user", "user_1", "--organization", "org_1", "--claims-version", "1"])
        let claims = try JSONValue.parse(
            try #require(Base64URL.decode(v1.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".")[1])))
        #expect(claims["org_id"] == .string("org_1") && claims["org_role"] == .string("org:member"))
        #expect(try await serve.stop() == 0)
    }

    /// The blob fake's signed links (account-api's receipts) lead to `serve`, which answers
    /// them as Cloud Storage's XML API does: the object; 403 for an altered link or one
    /// signed under another state's key; 400 once expired on the local clock, or for an
    /// expiry outside 1 s to 7 days; 404 for no object.
    @Test func signedLinksOfTheBlobFake_areServed_andCheckedAsGCSChecksThem() async throws {
        let serve = try await ServeProcess(["--clock", "virtual", "--start", "2026-01-01T08:00:00Z", "--quiet"])
        let blobs = SQLiteBlobStore(try SQLiteDatabase(path: serve.state))
        let name = "usage/2026/01/01/accounts/user_1.receipt.json"
        try await blobs.write(name, Array("{\"receipt\": 1}\n".utf8), contentType: "application/json", ifGenerationMatch: 0)
        let now = Timestamp(rfc3339: "2026-01-01T08:00:00Z")!
        let link = try await blobs.signedURL(name, expiresInSeconds: 900, now: now)
        #expect(link.hasPrefix(serve.url + LocalCloudRouter.storagePrefix + "/local/usage/2026/01/01/accounts/"))
        let fetched = try await curl("GET", link, headers: [:], body: Data())
        #expect(fetched.status == 200 && String(decoding: fetched.body, as: UTF8.self) == "{\"receipt\": 1}\n")

        func refusal(_ url: String) async throws -> (Int, String) {
            let answer = try await curl("GET", url, headers: [:], body: Data())
            return (answer.status, String(decoding: answer.body, as: UTF8.self))
        }
        let longer = link.replacingOccurrences(of: "X-Goog-Expires=900", with: "X-Goog-Expires=604800")
        let (altered, alteredBody) = try await refusal(longer)
        #expect(altered == 403 && alteredBody.contains("<Code>SignatureDoesNotMatch</Code>"))
        let other = link.replacingOccurrences(of: "user_1.receipt.json", with: "user_2.receipt.json")
        #expect(try await refusal(other).0 == 403, "the path is signed too")
        // The largest expiry a link can carry is refused before any arithmetic: serve lives on.
        let huge = link.replacingOccurrences(of: "X-Goog-Expires=900", with: "X-Goog-Expires=9223372036854775807")
        let (overflow, overflowBody) = try await refusal(huge)
        #expect(overflow == 400 && overflowBody.contains("<Code>InvalidArgument</Code>"), "\(overflowBody)")
        #expect(try await refusal(link.replacingOccurrences(of: "X-Goog-Expires=900", with: "X-Goog-Expires=0")).0 == 400)
        // A link signed under another state's key (the old fixed key, say) opens nothing here.
        let elsewhere = try await SQLiteBlobStore(try temporaryDatabase()).signedURL(name, expiresInSeconds: 900, now: now)
        let signature = try #require(elsewhere.split(separator: "X-Goog-Signature=").last)
        let forged = link.replacingOccurrences(
            of: #"X-Goog-Signature=[0-9a-f]+"#, with: "X-Goog-Signature=\(signature)", options: .regularExpression)
        let forgedStatus = try await refusal(forged).0
        #expect(forged != link && forgedStatus == 403, "each state signs with a key of its own")
        let missing = try await blobs.signedURL("usage/none.json", expiresInSeconds: 900, now: now)
        let (absent, absentBody) = try await refusal(missing)
        #expect(absent == 404 && absentBody.contains("<Code>NoSuchKey</Code>"))
        try await serve.tollgate(["clock", "advance", "15m"])
        let (expired, expiredBody) = try await refusal(link)
        #expect(expired == 400 && expiredBody.contains("<Code>ExpiredToken</Code>"), "expires at 08:15:00 exactly")
        #expect(try await serve.stop() == 0)
    }

    @Test func wrongUse_isAnsweredWithAClearError() async throws {
        let (status, _, err) = try await runTollgate(["serve", "--processes", "--clock", "virtual"], environment: [:])
        #expect(status == 64 && err.contains("--processes"))
        let (unreachable, _, message) = try await runTollgate(["trigger", "cleanup", "--url", "http://127.0.0.1:9"], environment: [:])
        #expect(unreachable != 0 && message.contains("no local cloud answers at http://127.0.0.1:9"))
        let serve = try await ServeProcess([])
        try await serve.tollgate(["clock", "advance", "1d"], expectStatus: 64)
        try await serve.tollgate(["clock", "advance", "soon"], expectStatus: 64)
        let noValue = try await serve.tollgate(
            ["publish", "usage-events", "--data", try Self.file("{}"), "--attribute", "origin"], expectStatus: 64)
        #expect(noValue.contains("--attribute takes name=value, not 'origin'"))
        // The control API answers bad requests with Google's error body and changes nothing.
        let project = "/v1/projects/\(LocalCloudNames.project)"
        for (path, body, status) in [
            ("/_emulator/clock", "not json", 400), ("/_emulator/clock", "{\"advanceSeconds\": 60}", 400),
            ("\(project)/topics/usage-events:publish", "{\"messages\": [{\"data\": \"%%%\"}]}", 400),
            ("\(project)/topics/usage-events:publish", "{\"messages\": [{\"data\": \"AQ==\"}, {\"data\": \"\"}]}", 400),
            ("\(project)/topics/nowhere:publish", "{\"messages\": [{\"data\": \"AQ==\"}]}", 404),
            ("/_emulator/outages", "{\"function\": \"usage-recorder\", \"status\": 200}", 400),
            ("/_emulator/nothing", "{}", 404),
        ] {
            let answer = try await curl("POST", serve.url + path, headers: [:], body: Data(body.utf8))
            #expect(answer.status == status, "\(path) \(body)")
            #expect(try JSONValue.parse(answer.body)["error"]?["message"]?.stringValue?.isEmpty == false, "\(path) says why")
        }
        let database = try SQLiteDatabase(path: serve.state)
        #expect(try await SQLitePublisher(database).published().isEmpty, "no message of a refused batch was published")
        // Each refusal is one line of serve's live log, saying why: the seven above and
        // `clock advance 1d` on the wall clock (`soon` never left the command line).
        func refusals() -> [String] { serve.lines.all.filter { $0.contains("local-cloud") && $0.contains("refused: ") } }
        for _ in 0..<100 where refusals().count < 8 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(refusals().count == 8, "\(serve.output)")
        #expect(refusals().contains { $0.contains("POST /_emulator/nothing") && $0.contains("404") && $0.contains("nothing at") })
        #expect(try await serve.stop() == 0)
    }

    func curl(_ method: String, _ url: String, headers: [String: String], body: Data) async throws -> (status: Int, body: Data) {
        try await send(
            method, try #require(URL(string: url)), body: body,
            headers: headers.merging(["Content-Type": "application/json"]) { given, _ in given })
    }

    /// Each local cloud's state gets a signing key of its own, made once and kept, owner-only.
    @Test func exportSigningKey_isMadeOncePerState_andKeptPrivate() throws {
        let folder = scratchURL("local-key")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let (one, other) = (folder.appendingPathComponent("one.db").path, folder.appendingPathComponent("other.db").path)
        let made = try LocalEnvironment.exportSigningKey(beside: one)
        #expect(try LocalEnvironment.exportSigningKey(beside: one) == made)
        #expect(LocalEnvironment.exportSigningKey(forState: one) == made)
        #expect(try LocalEnvironment.exportSigningKey(beside: other) != made)
        #expect(
            LocalEnvironment.exportSigningKey(forState: folder.appendingPathComponent("replayed.db").path)
                == LocalEnvironment.exportSigningKey)
        let mode = try FileManager.default.attributesOfItem(atPath: one + ".export-signing-key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder.path).count) == 2, "no temporary file is left")
    }
}
