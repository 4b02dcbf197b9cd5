import Dispatch
import Foundation
import Logging
import TollgateAuth
import TollgateDrivers
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTesting

/// Fuzz targets that drive a function's whole path — the runtime's caller check,
/// decoding, the handler, the store, dead letters — on a fresh store per input, built as
/// the emulator builds it. The target adds what the real sender adds (a valid OIDC token,
/// a valid Stripe signature over the generated body), so inputs reach the handler; a
/// separate target fuzzes the Stripe-Signature header itself.
///
/// An input is `Header: value` lines, a blank line, then the body (no blank line: all
/// body). A trap is a finding, and so is a 500: the runtime answers 500 only for a bug.
enum PathTargets {
    static let all: [String: @Sendable (Data) -> Void] = [
        "path-stripe-webhook": { data in
            var request = PathInput(data).request
            // `$REFERENCE` stands for a Checkout reference account-api minted for the seeded
            // account, so inputs reach the linking rules past the MAC.
            if let text = String(data: request.body, encoding: .utf8), text.contains("$REFERENCE") {
                request.body = Data(text.replacingOccurrences(of: "$REFERENCE", with: Harness.checkoutReference).utf8)
            }
            let secret = LocalEnvironment.webhookSecrets["current"]!
            let signer = StripeSigner(secret: secret)
            request.headers.append(
                ("Stripe-Signature", signer.header(timestamp: Harness.clock.now().secondsSinceEpoch, body: request.body)))
            Harness.deliver("stripe-webhook", request)
        },
        "path-stripe-signature-header": { data in
            // The first line is the header, verbatim; the rest the body.
            let text = String(decoding: data, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let request = FunctionRequest(
                method: "POST", path: "/", headers: [("Stripe-Signature", String(parts.first ?? ""))],
                body: Data((parts.count > 1 ? parts[1] : "").utf8))
            Harness.deliver("stripe-webhook", request)
        },
        "path-clerk-webhook": { data in
            // Signed as Svix signs; the store holds an account Ada owns and Bob, a teammate an
            // operator linked to it. Whatever one event says, only Ada's deletion closes it.
            var request = PathInput(data).request
            let signer = try! SvixSigner(secret: LocalEnvironment.svixSecrets["current"]!)
            request.headers += signer.headers(id: "msg_fuzz", timestamp: Harness.clock.now().secondsSinceEpoch, body: request.body)
            Harness.deliver("clerk-webhook", request, seedKey: true) { store in
                let account = try await store.get(try DocumentPath("accounts/acct_fuzz"))?.decode(Account.self)
                let owner = try await store.get(try DocumentPath("users/\(Harness.owner)"))?.decode(UserRecord.self)
                precondition(account?.closed == nil || owner?.deleted != nil, "an event closed an account its subject does not own")
            }
        },
        "path-auth-validator": { data in
            // `$KEY` stands for the seeded account's real API key, so inputs can reach it.
            var request = PathInput(data).request
            request.headers = request.headers.map { ($0.name, $0.value.replacingOccurrences(of: "$KEY", with: Harness.apiKey)) }
            Harness.deliver("auth-validator", request, seedKey: true)
        },
        "path-usage-recorder": { data in
            // The input is the message's data, pushed as Pub/Sub pushes it.
            let body = Data(
                #"{"message":{"data":"\#(data.base64EncodedString())","messageId":"1","publishTime":"2026-01-01T00:00:00Z"},"subscription":"projects/p/subscriptions/usage-recorder"}"#
                    .utf8)
            Harness.deliver(
                "usage-recorder", FunctionRequest(method: "POST", path: "/", headers: [("Content-Type", "application/json")], body: body))
        },
        "path-usage-report": { data in
            var request = PathInput(data).request
            request.headers += [("X-CloudTasks-QueueName", "usage-reports"), ("X-CloudTasks-TaskName", "fuzz")]
            Harness.deliver("usage-report", request)
        },
        "path-quota-reset": { data in Harness.deliver("quota-reset", PathInput(data).request) },
        "path-usage-export": { data in Harness.deliver("usage-export", PathInput(data).request) },
        "path-cleanup": { data in Harness.deliver("cleanup", PathInput(data).request) },
    ]
}

/// Header lines, a blank line, a body.
struct PathInput {
    let request: FunctionRequest

    init(_ data: Data) {
        let bytes = [UInt8](data)
        let separator: [UInt8] = [0x0A, 0x0A]
        var headers: [(name: String, value: String)] = []
        var body = data
        if let end = bytes.indices.dropLast().first(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }) {
            for line in String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append(
                    (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
            body = Data(bytes[(end + separator.count)...])
        }
        request = FunctionRequest(method: "POST", path: "/", headers: headers, body: body)
    }
}

/// One issuer, one clock, one token per function for the whole run (as Google's senders
/// reuse theirs); a fresh in-memory store per input.
enum Harness {
    static let clock = VirtualClock(start: Fixture.defaultStart.adding(seconds: 86_400 * 3))
    static let issuer = try! LocalOIDCIssuer(keyID: "fuzz-oidc")
    static let clerk = try! LocalOIDCIssuer(keyID: "fuzz-clerk")
    static let apiKey = APIKeys.generate(mode: .test)
    static let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
    static let tokens: [String: String] = Dictionary(
        uniqueKeysWithValues: EmulatedFunction.declarations.map { declaration in
            (declaration.name, try! issuer.token(audience: LocalEnvironment.url(of: declaration.name), issuedAt: clock.now()))
        })

    /// The seeded account's owner, and a teammate an operator linked to it.
    static let owner = "user_2TgAdaLovelace000001"
    static let teammate = "user_2TgBobExample0000002"
    static let checkoutReference: String = {
        var random = SystemRandomNumberGenerator()
        return try! CheckoutReferenceSigner(secrets: [LocalEnvironment.checkoutSecrets["current"]!])
            .mint(accountId: "acct_fuzz", now: clock.now(), using: &random)
    }()

    /// Delivers `request` to a fresh instance of `name` over a fresh store (seeded with the
    /// Pro account when `seedKey`), then runs `check` against that store.
    static func deliver(
        _ name: String, _ request: FunctionRequest, seedKey: Bool = false,
        check: @escaping @Sendable (any DocumentStore) async throws -> Void = { _ in }
    ) {
        var request = request
        if let declaration = EmulatedFunction.declarations.first(where: { $0.name == name }), declaration.trigger.requiresOIDC,
            !request.headers.contains(where: { $0.name.lowercased() == "authorization" })
        {
            request.headers.append(("Authorization", "Bearer \(tokens[name]!)"))
        }
        let delivered = request
        let status = blocking {
            let database = try! SQLiteDatabase(path: ":memory:", clock: clock)
            let ports = Ports(sqlite: database)
            // The topics exist, as the emulator and Terraform create them.
            for topic in EmulatedFunction.declarations.topics { try! await SQLitePublisher(database).createTopic(topic) }
            if seedKey { try! await seed(ports.store) }
            let function = try! EmulatedFunction.make(
                name, ports: ports, issuer: issuer, clerk: clerk, webhookSecrets: ["current"], logger: logger)
            let status = await function.deliver(delivered).status
            try! await check(ports.store)
            return status
        }
        precondition(status != 500, "\(name) answered 500 to a fuzzed input: a bug, not a refusal")
    }

    /// A Pro account with one key, for `$KEY`, owned by ``owner``, with ``teammate`` linked to it.
    static func seed(_ store: any DocumentStore) async throws {
        let pro = TierCatalog.standard.entitlements(for: .pro)
        try await store.set(
            try DocumentPath(collection: Account.collection, id: "acct_fuzz"),
            try FieldValueEncoder().encode(
                Account(id: "acct_fuzz", tier: .pro, entitlements: pro, owner: AccountOwner(kind: .user, id: owner))))
        for user in [owner, teammate] {
            try await store.set(
                try DocumentPath(collection: UserRecord.collection, id: user),
                try FieldValueEncoder().encode(UserRecord(accountId: "acct_fuzz")))
        }
        let record = APIKeyRecord(
            accountId: "acct_fuzz", displayPrefix: APIKeys.displayPrefix(of: apiKey), name: nil, created: clock.now(), expires: nil,
            revoked: nil)
        try await store.create(
            try DocumentPath(collection: APIKeyRecord.collection, id: try APIKeys(pepper: LocalEnvironment.keyPepper).hash(apiKey)),
            try FieldValueEncoder().encode(record))
    }

    /// Runs async work from libFuzzer's synchronous callback, which is not a thread of the
    /// cooperative pool, so blocking it is safe.
    static func blocking<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

/// Set once by the task, read once after the semaphore: the semaphore orders the two.
private final class Box<T>: @unchecked Sendable {
    var value: T?
}
