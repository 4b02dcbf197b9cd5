import Foundation
import Logging
import Testing
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// One malformed or unauthorised input and the answer the README documents for it.
struct BadInput: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        /// Refused with this status; nothing at all is written.
        case refused(Int)
        /// Poison from a sender that retries: acknowledged (200) after one dead letter,
        /// and nothing else is written.
        case deadLettered
    }

    let function: String
    let what: String
    let outcome: Outcome
    let request: @Sendable (BadInputContext) throws -> FunctionRequest

    var testDescription: String { "\(function): \(what)" }
}

/// What a case builds its request from: the emulator's senders (real envelopes, real
/// signatures, real OIDC tokens) and the issuers behind them.
struct BadInputContext {
    let senders: Senders
    let clock: VirtualClock
    let function: FunctionDeclaration

    func send(_ spec: JSONValue) throws -> FunctionRequest { try senders.request(for: spec, delivery: 1) }

    func bearer(
        audience: String? = nil, invoker: String = LocalOIDCIssuer.serviceAccount, issuedAgo: Int64 = 0, algorithm: String = "RS256",
        keyID: String? = nil
    ) throws -> (name: String, value: String) {
        let token = try sharedIssuer.token(
            audience: audience ?? LocalEnvironment.url(of: function.name), email: invoker,
            issuedAt: clock.now().adding(seconds: -issuedAgo), algorithm: algorithm, keyID: keyID)
        return ("Authorization", "Bearer \(token)")
    }

    /// A POST with a valid OIDC token and this raw body.
    func authorized(_ body: String, contentType: String = "application/json") throws -> FunctionRequest {
        FunctionRequest(method: "POST", path: "/", headers: [try bearer(), ("Content-Type", contentType)], body: Data(body.utf8))
    }

    /// A Pub/Sub push envelope around `data` (already base64, or not, as the case wants).
    func push(data: String) throws -> FunctionRequest {
        try authorized(
            #"{"message":{"data":"\#(data)","messageId":"1","publishTime":"2026-01-15T10:00:00Z"},"subscription":"projects/p/subscriptions/s"}"#
        )
    }

    func push(json: String) throws -> FunctionRequest { try push(data: Data(json.utf8).base64EncodedString()) }
}

/// At least 50 malformed inputs across every trigger, each answered with the documented
/// status, leaving the state exactly as it was (but for the one dead letter a retrying
/// sender's poison leaves, for a person to replay).
@Suite struct BadInputTests {
    static let event = #"{"requestId":"r1","accountId":"acct_1","time":"2026-01-15T10:00:00Z","endpoint":"/v1/x","units":1}"#
    static let stranger = "stranger@elsewhere.iam.gserviceaccount.com"

    /// The same refusals hold for every function an internal trigger calls.
    static func callerChecks(_ function: String) -> [BadInput] {
        [
            BadInput(function: function, what: "no Authorization header", outcome: .refused(401)) { _ in
                FunctionRequest(method: "POST", path: "/", headers: [("Content-Type", "application/json")], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "a token for another audience", outcome: .refused(401)) { context in
                FunctionRequest(
                    method: "POST", path: "/", headers: [try context.bearer(audience: "https://elsewhere.a.run.app")], body: Data("{}".utf8)
                )
            },
            BadInput(function: function, what: "an expired token", outcome: .refused(401)) { context in
                FunctionRequest(method: "POST", path: "/", headers: [try context.bearer(issuedAgo: 7_200)], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "a token signed with an unknown key id", outcome: .refused(401)) { context in
                FunctionRequest(
                    method: "POST", path: "/", headers: [try context.bearer(keyID: "not-a-published-key")], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "a token whose header says HS256", outcome: .refused(401)) { context in
                FunctionRequest(method: "POST", path: "/", headers: [try context.bearer(algorithm: "HS256")], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "a valid token of a caller not allowed", outcome: .refused(403)) { context in
                FunctionRequest(method: "POST", path: "/", headers: [try context.bearer(invoker: stranger)], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "Bearer followed by garbage", outcome: .refused(401)) { _ in
                FunctionRequest(method: "POST", path: "/", headers: [("Authorization", "Bearer not.a.jwt")], body: Data("{}".utf8))
            },
            BadInput(function: function, what: "GET instead of POST", outcome: .refused(405)) { context in
                FunctionRequest(method: "GET", path: "/", headers: [try context.bearer()], body: Data())
            },
            BadInput(function: function, what: "a body over 1 MiB", outcome: .refused(413)) { context in
                try context.authorized(String(repeating: " ", count: 1_100_000) + "{}")
            },
        ]
    }

    /// A request to account-api as the emulator's `http` sender makes it.
    static func account(_ what: String, _ spec: String, status: Int) -> BadInput {
        BadInput(function: "account-api", what: what, outcome: .refused(status)) { context in
            try context.send(.object(["http": try JSONValue.parse(Data(spec.utf8))]))
        }
    }

    /// A Clerk webhook as Svix sends it (`clerk/payloads/user-created.json` unless `raw`),
    /// spoiled as `signature` or `extra` say.
    static func clerk(
        _ what: String, signature: String = "valid", raw: String? = nil, extra: [String: JSONValue] = [:], outcome: BadInput.Outcome
    ) -> BadInput {
        BadInput(function: "clerk-webhook", what: what, outcome: outcome) { context in
            var spec: [String: JSONValue] = ["signature": .string(signature)]
            if let raw { spec["raw"] = .string(raw) } else { spec["file"] = .string("clerk/payloads/user-created.json") }
            spec.merge(extra) { _, new in new }
            return try context.send(.object(["clerk": .object(spec)]))
        }
    }

    static let cases: [BadInput] =
        [
            // account-api: called by browsers; nothing is read before the session is.
            account("no Authorization header", #"{"method": "GET", "path": "/v1/account"}"#, status: 401),
            account(
                "Bearer followed by garbage", #"{"method": "GET", "path": "/v1/account", "headers": {"Authorization": "Bearer x.y.z"}}"#,
                status: 401),
            account(
                "a session token signed by a stranger", #"{"method": "GET", "path": "/v1/keys", "session": {"signer": "stranger"}}"#,
                status: 401),
            account(
                "an expired session token",
                #"{"method": "POST", "path": "/v1/keys", "session": {"expiresIn": -120}, "body": {"name": "k"}}"#, status: 401),
            account("a path that is no route", #"{"method": "GET", "path": "/v1/../admin"}"#, status: 404),
            account("PUT on the keys", #"{"method": "PUT", "path": "/v1/keys"}"#, status: 405),
            account("a usage range of words", #"{"method": "GET", "path": "/v1/usage?from=monday&to=friday"}"#, status: 400),
            account("a key prefix that is a path", #"{"method": "DELETE", "path": "/v1/keys/..%2F..%2Fx"}"#, status: 400),
            account(
                "a preflight from another origin",
                #"{"method": "OPTIONS", "path": "/v1/keys", "headers": {"Origin": "https://evil.example"}}"#, status: 403),
            account("a body over 1 MiB", #"{"method": "POST", "path": "/v1/keys", "raw": "{}", "padTo": 1100000}"#, status: 413),
            // clerk-webhook: Svix retries for days, but an unsigned request is not Svix's.
            clerk("no svix-signature", signature: "none", outcome: .refused(400)),
            clerk("no svix-id", signature: "missing-id", outcome: .refused(400)),
            clerk("no svix-timestamp", signature: "missing-timestamp", outcome: .refused(400)),
            clerk("a v1= signature (Stripe's shape)", signature: "malformed", outcome: .refused(400)),
            clerk("only a v2 signature", signature: "no-v1", outcome: .refused(400)),
            clerk("a body changed after signing", signature: "tampered", outcome: .refused(400)),
            clerk("signed with an unknown secret", extra: ["secret": .string("unrelated")], outcome: .refused(400)),
            clerk("signed ten minutes ago", extra: ["signedAt": .integer(-600)], outcome: .refused(400)),
            clerk("signed ten minutes ahead", extra: ["signedAt": .integer(600)], outcome: .refused(400)),
            clerk("signed text that is not JSON", raw: "not json", outcome: .deadLettered),
            clerk("a signed JSON array", raw: "[1,2,3]", outcome: .deadLettered),
            clerk(
                "a signed event without data", raw: #"{"object":"event","type":"user.created","timestamp":1767225600000}"#,
                outcome: .deadLettered),
            clerk(
                "a signed user event whose id is a path",
                raw: #"{"object":"event","type":"user.created","timestamp":1767225600000,"data":{"id":"../users/x"}}"#,
                outcome: .deadLettered),
            clerk(
                "a signed event dated in year 20000",
                raw: #"{"object":"event","type":"user.created","timestamp":569318400000000,"data":{"id":"user_1","object":"user"}}"#,
                outcome: .deadLettered),
            BadInput(function: "clerk-webhook", what: "a signed svix-id that is not an id", outcome: .deadLettered) { context in
                try context.send(
                    .object(["clerk": .object(["file": .string("clerk/payloads/user-created.json"), "id": .string("msg/../x")])]))
            },
            BadInput(function: "clerk-webhook", what: "GET", outcome: .refused(405)) { context in
                try context.send(.object(["http": .object(["method": .string("GET")])]))
            },
            BadInput(function: "clerk-webhook", what: "a signed body over 1 MiB", outcome: .refused(413)) { context in
                try context.send(
                    .object(["clerk": .object(["file": .string("clerk/payloads/user-created.json"), "padTo": .integer(1_100_000)])]))
            },
            // stripe-webhook: Stripe retries, but an unsigned request is not Stripe's.
            BadInput(function: "stripe-webhook", what: "no Stripe-Signature", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json"), "signature": .string("none")])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "a signature without its timestamp", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object([
                            "file": .string("stripe/payloads/subscription-created-pro.json"), "signature": .string("malformed"),
                        ])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "only a v0 signature", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object([
                            "file": .string("stripe/payloads/subscription-created-pro.json"), "signature": .string("v0-only"),
                        ])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "a body changed after signing", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object([
                            "file": .string("stripe/payloads/subscription-created-pro.json"), "signature": .string("tampered"),
                        ])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "signed with an unknown secret", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json"), "secret": .string("previous")])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "signed ten minutes ago", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json"), "signedAt": .integer(-600)])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "signed ten minutes ahead", outcome: .refused(400)) { context in
                try context.send(
                    .object([
                        "stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json"), "signedAt": .integer(600)])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "a signature header of garbage", outcome: .refused(400)) { context in
                var request = try context.send(
                    .object(["stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json")])]))
                request.headers = request.headers.map { $0.name == "Stripe-Signature" ? ($0.name, "t=abc,v1=zz") : $0 }
                return request
            },
            BadInput(function: "stripe-webhook", what: "signed text that is not JSON", outcome: .deadLettered) { context in
                try context.send(.object(["stripe": .object(["raw": .string("not json at all")])]))
            },
            BadInput(function: "stripe-webhook", what: "signed truncated JSON", outcome: .deadLettered) { context in
                try context.send(
                    .object(["stripe": .object(["raw": .string(#"{"id":"evt_1","type":"customer.subscription.created","data":{"obj"#)])]))
            },
            BadInput(function: "stripe-webhook", what: "a signed JSON array", outcome: .deadLettered) { context in
                try context.send(.object(["stripe": .object(["raw": .string("[1,2,3]")])]))
            },
            BadInput(function: "stripe-webhook", what: "a signed empty body", outcome: .deadLettered) { context in
                try context.send(.object(["stripe": .object(["raw": .string("")])]))
            },
            BadInput(function: "stripe-webhook", what: "a signed event without a type", outcome: .deadLettered) { context in
                try context.send(.object(["stripe": .object(["raw": .string(#"{"id":"evt_1","object":"event","data":{"object":{}}}"#)])]))
            },
            BadInput(function: "stripe-webhook", what: "a signed subscription event whose object is a string", outcome: .deadLettered) {
                context in
                try context.send(
                    .object([
                        "stripe": .object([
                            "raw": .string(
                                #"{"id":"evt_2","object":"event","type":"customer.subscription.created","created":1,"data":{"object":"sub_1"}}"#
                            )
                        ])
                    ]))
            },
            BadInput(function: "stripe-webhook", what: "GET", outcome: .refused(405)) { context in
                try context.send(.object(["http": .object(["method": .string("GET")])]))
            },
            BadInput(function: "stripe-webhook", what: "a signed body over 1 MiB", outcome: .refused(413)) { context in
                try context.send(
                    .object([
                        "stripe": .object(["file": .string("stripe/payloads/subscription-created-pro.json"), "padTo": .integer(1_100_000)])
                    ]))
            },

            // usage-recorder: Pub/Sub push retries, so poison is dead-lettered.
            BadInput(function: "usage-recorder", what: "an envelope that is not JSON", outcome: .deadLettered) {
                try $0.authorized("{not json")
            },
            BadInput(function: "usage-recorder", what: "an envelope without a message", outcome: .deadLettered) {
                try $0.authorized(#"{"subscription":"projects/p/subscriptions/s"}"#)
            },
            BadInput(function: "usage-recorder", what: "message data that is not base64", outcome: .deadLettered) {
                try $0.push(data: "%%%not-base64")
            },
            BadInput(function: "usage-recorder", what: "base64 of text that is not JSON", outcome: .deadLettered) {
                try $0.push(data: Data("plain text".utf8).base64EncodedString())
            },
            BadInput(function: "usage-recorder", what: "an event without requestId", outcome: .deadLettered) {
                try $0.push(json: #"{"accountId":"acct_1","time":"2026-01-15T10:00:00Z","endpoint":"/v1/x","units":1}"#)
            },
            BadInput(function: "usage-recorder", what: "an event without accountId", outcome: .deadLettered) {
                try $0.push(json: #"{"requestId":"r1","time":"2026-01-15T10:00:00Z","endpoint":"/v1/x","units":1}"#)
            },
            BadInput(function: "usage-recorder", what: "negative units", outcome: .deadLettered) {
                try $0.push(json: event.replacingOccurrences(of: #""units":1"#, with: #""units":-3"#))
            },
            BadInput(function: "usage-recorder", what: "units as a string", outcome: .deadLettered) {
                try $0.push(json: event.replacingOccurrences(of: #""units":1"#, with: #""units":"1""#))
            },
            BadInput(function: "usage-recorder", what: "units as a fraction", outcome: .deadLettered) {
                try $0.push(json: event.replacingOccurrences(of: #""units":1"#, with: #""units":1.5"#))
            },
            BadInput(function: "usage-recorder", what: "a time that is not RFC 3339", outcome: .deadLettered) {
                try $0.push(json: event.replacingOccurrences(of: "2026-01-15T10:00:00Z", with: "15/01/2026"))
            },
            BadInput(function: "usage-recorder", what: "one good and one bad event in a batch", outcome: .deadLettered) {
                try $0.push(json: "[\(event),{\"requestId\":\"r2\"}]")
            },
            BadInput(function: "usage-recorder", what: "151 events in one message", outcome: .deadLettered) { context in
                let events = (0..<151).map { event.replacingOccurrences(of: #""r1""#, with: "\"r\($0)\"") }
                return try context.push(json: #"{"events":[\#(events.joined(separator: ","))]}"#)
            },
            BadInput(function: "usage-recorder", what: "a number where an event should be", outcome: .deadLettered) {
                try $0.push(json: "42")
            },
            BadInput(function: "usage-recorder", what: "a truncated envelope", outcome: .deadLettered) {
                try $0.authorized(#"{"message":{"data":"eyJy"#)
            },
        ]
        + callerChecks("usage-recorder")
        + [
            // auth-validator: a plain HTTP caller (the gateway); nothing retries.
            BadInput(function: "auth-validator", what: "no credential", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object([:])]))
            },
            BadInput(function: "auth-validator", what: "a key of the wrong format", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["keyText": .string("sk_not_ours")])]))
            },
            BadInput(function: "auth-validator", what: "a well-formed key nobody issued", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["keyText": .string("tg_live_" + String(repeating: "A", count: 32))])]))
            },
            BadInput(function: "auth-validator", what: "a cost that is not a number", outcome: .refused(400)) {
                try $0.send(
                    .object([
                        "validate": .object(["keyText": .string("tg_live_" + String(repeating: "A", count: 32)), "cost": .string("lots")])
                    ]))
            },
            BadInput(function: "auth-validator", what: "a negative cost", outcome: .refused(400)) {
                try $0.send(
                    .object([
                        "validate": .object(["keyText": .string("tg_live_" + String(repeating: "A", count: 32)), "cost": .string("-1")])
                    ]))
            },
            BadInput(function: "auth-validator", what: "a session token with alg none", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["session": .object(["signer": .string("none")])])]))
            },
            BadInput(function: "auth-validator", what: "a session token signed by a stranger", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["session": .object(["signer": .string("stranger")])])]))
            },
            BadInput(function: "auth-validator", what: "a session token HMAC-signed with the public key", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["session": .object(["signer": .string("hmac-public-key")])])]))
            },
            BadInput(function: "auth-validator", what: "an expired session token", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["session": .object(["expiresIn": .integer(-60)])])]))
            },
            BadInput(function: "auth-validator", what: "a session token from another issuer", outcome: .refused(401)) {
                try $0.send(.object(["validate": .object(["session": .object(["issuer": .string("https://evil.example")])])]))
            },

            // usage-export (Scheduler, retries): a bad back-fill day is poison.
            BadInput(function: "usage-export", what: "a back-fill day that does not exist", outcome: .deadLettered) {
                try $0.authorized(#"{"day":"2026-02-30"}"#)
            },
            BadInput(function: "usage-export", what: "a back-fill day that is a number", outcome: .deadLettered) {
                try $0.authorized(#"{"day":20260101}"#)
            },
            BadInput(function: "usage-export", what: "a body that is not JSON", outcome: .deadLettered) {
                try $0.authorized("day=yesterday")
            },
        ]
        + callerChecks("usage-export")
        + [
            // usage-report (Cloud Tasks, retries): malformed tasks are poison.
            BadInput(function: "usage-report", what: "a task body that is not JSON", outcome: .deadLettered) {
                try $0.send(.object(["task": .object(["name": .string("t1"), "raw": .string("{not json")])]))
            },
            BadInput(function: "usage-report", what: "a task without an account", outcome: .deadLettered) {
                try $0.send(
                    .object([
                        "task": .object(["name": .string("t2"), "body": .object(["day": .string("2026-01-01"), "units": .integer(5)])])
                    ]))
            },
            BadInput(function: "usage-report", what: "a task with negative units", outcome: .deadLettered) {
                try $0.send(
                    .object([
                        "task": .object([
                            "name": .string("t3"),
                            "body": .object(["day": .string("2026-01-01"), "accountId": .string("acct_a"), "units": .integer(-5)]),
                        ])
                    ]))
            },
            BadInput(function: "usage-report", what: "a task for month 13", outcome: .deadLettered) {
                try $0.send(
                    .object([
                        "task": .object([
                            "name": .string("t4"),
                            "body": .object(["day": .string("2026-13-01"), "accountId": .string("acct_a"), "units": .integer(5)]),
                        ])
                    ]))
            },
        ]
        + callerChecks("usage-report")
        + callerChecks("quota-reset").prefix(4) + callerChecks("cleanup").prefix(4) + callerChecks("health").prefix(4)

    @Test func thereAreAtLeastFifty_andEveryFunctionHasSome() {
        #expect(Self.cases.count >= 50)
        #expect(Set(Self.cases.map(\.function)) == Set(EmulatedFunction.names))
    }

    @Test(arguments: cases)
    func badInput_getsItsDocumentedAnswer_andChangesNothing(_ input: BadInput) async throws {
        let clock = VirtualClock(start: Fixture.defaultStart)
        // In memory: the cases run at once, and a file database each held ~10 descriptors
        // (see collectOutput(of:into:keptAs:) for why this process keeps few).
        let database = try SQLiteDatabase(path: ":memory:", clock: clock)
        let ports = Ports(sqlite: database)
        let clerk = try LocalOIDCIssuer(keyID: "clerk-local-1")
        let function = try EmulatedFunction.make(
            input.function, ports: ports, issuer: sharedIssuer, clerk: clerk, webhookSecrets: ["current"],
            logger: Logger(label: "bad-input") { _ in SwiftLogNoOpLogHandler() })
        var senders = Senders(
            issuer: sharedIssuer, clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"),
            function: function.declaration)
        senders.clerk = clerk
        senders.stranger = try LocalOIDCIssuer(keyID: clerk.keyID)
        let context = BadInputContext(senders: senders, clock: clock, function: function.declaration)
        let before = try await database.stateDump()
        let response = await function.deliver(try input.request(context))
        var after = try await database.stateDump()
        let deadLetters = Self.removeDeadLetters(&after)
        switch input.outcome {
        case .refused(let status):
            #expect(response.status == status, "\(String(decoding: response.body, as: UTF8.self))")
            if status == 405 { #expect(response.headers["Allow"]?.isEmpty == false, "a 405 names the methods allowed (RFC 9110)") }
            #expect(deadLetters == 0)
        case .deadLettered:
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            #expect(deadLetters == 1)
        }
        #expect(after == before, "nothing but a dead letter is written")
    }

    /// Removes the dead letters from a state dump; returns how many there were.
    static func removeDeadLetters(_ dump: inout JSONValue) -> Int {
        guard case .object(var top) = dump, case .object(var documents) = top["documents"] else { return 0 }
        let keys = documents.keys.filter { $0.hasPrefix("deadLetters/") }
        for key in keys { documents[key] = nil }
        top["documents"] = .object(documents)
        dump = .object(top)
        return keys.count
    }
}
