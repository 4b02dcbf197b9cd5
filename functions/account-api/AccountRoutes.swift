import Foundation
import Logging
import TollgateAuth
import TollgateExport
import TollgateModel
import TollgateRuntime

/// What each route reads and writes, for the account the session acts for.
struct AccountRoutes: Sendable {
    /// Active keys an account may hold at once.
    static let maxActiveKeys = 50
    /// Keys a list answers with, newest first.
    static let listLimit = 200
    /// How far ahead a key's expiry may be set: five years.
    static let maxExpirySeconds: Int64 = 5 * 366 * 86_400

    /// How long a receipt's links stay good: long enough to download, short enough that a
    /// link copied into a ticket soon stops working.
    static let linkSeconds: Int64 = 900

    let store: any DocumentStore
    let publisher: any Publisher
    let blobs: any BlobStore
    let keys: APIKeys
    let keyMode: APIKeys.Mode
    let period: QuotaPeriod
    let exports: ExportLayout
    let checkoutReferences: CheckoutReferenceSigner
    let entropy: any Entropy

    // MARK: GET /v1/account

    func account(_ actor: SessionAccounts.Actor, now: Timestamp) async throws -> FunctionResponse {
        let account = try await loadAccount(actor.accountId)
        let stored = try await store.get(try DocumentPath(collection: QuotaWindow.collection, id: account.id))?.decode(QuotaWindow.self)
        let window = QuotaWindow.current(stored, account: account, period: period, now: now)
        let limit = window.effectiveLimit(entitlements: account.entitlements)
        var body: [String: JSONValue] = [
            "accountId": .string(account.id), "tier": .string(account.tier.rawValue),
            "status": .string(account.closed != nil ? "closed" : account.entitlements.enabled ? "active" : "suspended"),
            "entitlements": account.entitlements.plainJSON,
            "quota": .object([
                "limit": .integer(limit), "used": .integer(min(window.used, limit)), "remaining": .integer(max(0, limit - window.used)),
                "windowStart": .string(window.start.rfc3339), "reset": .string(window.end.rfc3339),
            ]),
            "billing": account.billing.map { billing in
                .object([
                    "status": .string(billing.status.rawValue),
                    "currentPeriodStart": billing.currentPeriodStart.map { .string($0.rfc3339) } ?? .null,
                    "currentPeriodEnd": billing.currentPeriodEnd.map { .string($0.rfc3339) } ?? .null,
                    "cancelAtPeriodEnd": .bool(billing.cancelAtPeriodEnd),
                ])
            } ?? .null,
            "role": actor.organization.map { .string($0.role) } ?? .null,
        ]
        if let organization = actor.organization { body["organizationId"] = .string(organization.id) }
        return .json(200, .object(body))
    }

    // MARK: GET /v1/keys

    func keys(_ actor: SessionAccounts.Actor, now: Timestamp) async throws -> FunctionResponse {
        let records = try await accountKeys(actor.accountId).map(\.record)
            .sorted { ($0.created, $0.displayPrefix) > ($1.created, $1.displayPrefix) }.prefix(Self.listLimit)
        return .json(200, .object(["keys": .array(records.map { .object(Self.fields($0, now: now)) })]))
    }

    // MARK: POST /v1/keys

    func createKey(_ actor: SessionAccounts.Actor, body: Data, now: Timestamp, logger: Logger) async throws -> FunctionResponse {
        try requireManager(actor)
        let request = try KeyRequest(body, now: now)
        let account = try await loadAccount(actor.accountId)
        guard account.closed == nil else { throw APIError(403, "ACCOUNT_CLOSED", "the account is closed") }
        let (keyMode, keys, entropy) = (self.keyMode, self.keys, self.entropy)
        // Counted and created in one transaction: concurrent creates cannot pass the limit
        // together (the query's result is part of what the commit checks).
        let (key, record) = try await store.runTransaction { transaction -> (String, APIKeyRecord) in
            let existing = try await transaction.query(Self.keysQuery(actor.accountId)).map { try $0.decode(APIKeyRecord.self) }
            let active = existing.filter { Self.status(of: $0, now: now) == "active" }
            guard active.count < Self.maxActiveKeys else {
                throw APIError(409, "KEY_LIMIT", "an account holds at most \(Self.maxActiveKeys) active keys: revoke one first")
            }
            // A prefix names one key of the account: draw again on the rare repeat.
            let taken = Set(existing.filter { $0.revoked == nil }.map(\.displayPrefix))
            var random = EntropyGenerator(entropy)
            var key = APIKeys.generate(mode: keyMode, using: &random)
            while taken.contains(APIKeys.displayPrefix(of: key)) { key = APIKeys.generate(mode: keyMode, using: &random) }
            let record = APIKeyRecord(
                accountId: actor.accountId, displayPrefix: APIKeys.displayPrefix(of: key), name: request.name, created: now,
                expires: request.expires, revoked: nil)
            try transaction.create(
                try DocumentPath(collection: APIKeyRecord.collection, id: keys.hash(key)), try FieldValueEncoder().encode(record))
            return (key, record)
        }
        logger.info("API key created", metadata: ["accountId": "\(actor.accountId)", "prefix": "\(record.displayPrefix)"])
        // The only time the key exists outside the caller's hands: never logged, never stored.
        var json = Self.fields(record, now: now)
        json["key"] = .string(key)
        return .json(201, .object(json))
    }

    // MARK: DELETE /v1/keys/{prefix}

    func revokeKey(_ prefix: String, actor: SessionAccounts.Actor, now: Timestamp, logger: Logger) async throws -> FunctionResponse {
        try requireManager(actor)
        let matching = try await accountKeys(actor.accountId).filter { $0.record.displayPrefix == prefix && $0.record.revoked == nil }
        guard let found = matching.first else { throw APIError(404, "KEY_NOT_FOUND", "no active key \(prefix) in this account") }
        guard matching.count == 1 else {
            throw APIError(409, "AMBIGUOUS_PREFIX", "more than one active key starts \(prefix): revoke with `tollgate keys revoke`")
        }
        let revoked = try await store.runTransaction { transaction -> Bool in
            guard var record = try await transaction.get(found.path)?.decode(APIKeyRecord.self), record.revoked == nil else { return false }
            record.revoked = now
            try transaction.set(found.path, try FieldValueEncoder().encode(record))
            return true
        }
        guard revoked else { throw APIError(404, "KEY_NOT_FOUND", "no active key \(prefix) in this account") }
        logger.info("API key revoked", metadata: ["accountId": "\(actor.accountId)", "prefix": "\(prefix)"])
        // auth-validator drops the key at once where this reaches it; elsewhere its cache TTL
        // bounds the key's life. The revocation stands whether or not the message goes out.
        let message = JSONValue.object(["accountId": .string(actor.accountId), "revokedKey": .string(found.path.id)])
        do {
            _ = try await publisher.publish(
                OutgoingMessage(
                    data: Array(message.rendered().utf8), attributes: ["accountId": actor.accountId], orderingKey: actor.accountId),
                to: Topic.entitlementsChanged)
        } catch {
            logger.warning(
                "revocation not announced; caches expire it", metadata: ["accountId": "\(actor.accountId)", "error": "\(error)"])
        }
        return FunctionResponse(status: 204)
    }

    // MARK: GET /v1/usage

    func usage(_ actor: SessionAccounts.Actor, query: UsageQuery, now: Timestamp) async throws -> FunctionResponse {
        let range = try query.days(today: UTCDay(containing: now))
        let counters = try await withThrowingTaskGroup(of: (Int, UsageCounters?).self) { group in
            for day in range {
                group.addTask {
                    let path = try DocumentPath(
                        "\(UsageCounters.collection)/\(actor.accountId)/days/\(UTCDay(daysSinceEpoch: day))")
                    return (day, try await store.get(path)?.decode(UsageCounters.self))
                }
            }
            var found: [Int: UsageCounters] = [:]
            for try await (day, counter) in group { found[day] = counter }
            return found
        }
        var total = UsageCounters()
        let days: [JSONValue] = range.map { day in
            let counter = counters[day] ?? UsageCounters()
            // Saturating: a counter corrupted to near Int64.max must not trap the function.
            total.requests = total.requests.addingSaturated(counter.requests)
            total.units = total.units.addingSaturated(counter.units)
            return .object([
                "day": .string(UTCDay(daysSinceEpoch: day).description), "requests": .integer(counter.requests),
                "units": .integer(counter.units),
            ])
        }
        return .json(
            200,
            .object([
                "accountId": .string(actor.accountId), "from": .string(UTCDay(daysSinceEpoch: range.lowerBound).description),
                "to": .string(UTCDay(daysSinceEpoch: range.upperBound).description), "days": .array(days),
                "total": .object(["requests": .integer(total.requests), "units": .integer(total.units)]),
            ]))
    }

    // MARK: GET /v1/signing-keys

    /// How long a client may cache the keys: they change only when the operator rotates
    /// the key, and a client meeting an unknown key id asks again.
    static let signingKeysMaxAge = 3_600

    /// Every public key that ever signed this deployment's exports (as usage-export
    /// publishes them beside the exports), and which of them signed the latest day: what a
    /// customer pins and verifies receipts with. Public: keys are not secret.
    func signingKeys() async throws -> FunctionResponse {
        var documents: [JSONValue] = []
        var token: String?
        repeat {
            let page = try await blobs.list(prefix: exports.prefix + "keys/", pageSize: 100, pageToken: token)
            for name in page.names where name.hasSuffix(".json") {
                // A published document that does not read as a key is skipped, never served.
                guard let key = try? ExportPublicKey(document: try await blobs.read(name).data),
                    let document = try? JSONValue.parse(Data(key.document))
                else { continue }
                documents.append(document)
            }
            token = page.nextPageToken
        } while token != nil
        let latest = try await store.query(DocumentQuery(collection: ExportState.collection).order(by: "day", descending: true).limit(1))
        let current = latest.first.flatMap { try? $0.decode(ExportState.self).keyId }
        return .json(200, .object(["keys": .array(documents), "current": current.map(JSONValue.string) ?? .null]))
            .with(header: "Cache-Control", "public, max-age=\(Self.signingKeysMaxAge)")
    }

    // MARK: GET /v1/exports/{day}

    /// Links to the account's signed usage receipt of `day` (tiers with
    /// `signedUsageReceipts`): the receipt, its signature, the account's records and the
    /// public key that verifies the receipt. Never the day's manifest: it names every account.
    func export(_ day: UTCDay, actor: SessionAccounts.Actor, now: Timestamp) async throws -> FunctionResponse {
        let account = try await loadAccount(actor.accountId)
        guard account.hasSignedUsageReceipts else {
            throw APIError(403, "FEATURE_NOT_IN_TIER", "signed usage receipts come with tiers that have signedUsageReceipts")
        }
        guard
            let state = try await store.get(try DocumentPath(collection: ExportState.collection, id: day.description))?
                .decode(ExportState.self)
        else {
            throw APIError(404, "EXPORT_NOT_READY", "\(day) is not exported yet: a day is exported after it ends (00:30 UTC)")
        }
        guard state.objectsExpired == nil else {
            throw APIError(410, "EXPORT_EXPIRED", "retention removed the records of \(day); the receipt stays in the bucket")
        }
        let name = exports.receipt(day, accountId: actor.accountId)
        let receipt: JSONValue
        do {
            receipt = try JSONValue.parse(Data(try await blobs.read(name).data))
        } catch let error as TollgateError where error.code == .notFound {
            throw APIError(
                404, "NO_RECEIPT", "no receipt for \(day): the account had no usage that day, or not this tier when it was exported")
        }
        guard let keyId = receipt["keyId"]?.stringValue, let object = receipt["object"] else {
            throw TollgateError(.internal, "\(name) is not a receipt")
        }
        func link(_ object: String) async throws -> JSONValue {
            .string(try await blobs.signedURL(object, expiresInSeconds: Self.linkSeconds, now: now))
        }
        return .json(
            200,
            .object([
                "day": .string(day.description), "accountId": .string(actor.accountId),
                "expiresAt": .string(now.adding(seconds: Self.linkSeconds).rfc3339),
                "records": receipt["records"] ?? .null, "units": receipt["units"] ?? .null,
                "manifestSHA256": receipt["manifest"]?["sha256"] ?? .null,
                "receipt": .object(["url": try await link(name)]),
                "signature": .object(["url": try await link(exports.receiptSignature(day, accountId: actor.accountId))]),
                "recordsObject": .object([
                    "url": try await link(exports.accountRecords(day, accountId: actor.accountId)),
                    "sha256": object["sha256"] ?? .null, "bytes": object["bytes"] ?? .null,
                ]),
                "publicKey": .object(["keyId": .string(keyId), "url": try await link(exports.publicKey(keyId))]),
            ]))
    }

    // MARK: POST /v1/checkout-references

    /// A `client_reference_id` for Stripe Checkout that names the session's account, for
    /// a user who manages it (the user's own account, or an organization's as `org:admin`):
    /// stripe-webhook links the paying customer to the account only through one of these.
    func checkoutReference(_ actor: SessionAccounts.Actor, now: Timestamp, logger: Logger) async throws -> FunctionResponse {
        guard actor.manages else { throw APIError(403, "FORBIDDEN", "only an org:admin of the organization manages its billing") }
        let account = try await loadAccount(actor.accountId)
        guard account.closed == nil else { throw APIError(403, "ACCOUNT_CLOSED", "the account is closed") }
        var random = EntropyGenerator(entropy)
        let reference = checkoutReferences.mint(accountId: actor.accountId, now: now, using: &random)
        logger.info("checkout reference minted", metadata: ["accountId": "\(actor.accountId)", "userId": "\(actor.userId)"])
        return .json(
            201,
            .object([
                "clientReferenceId": .string(reference), "accountId": .string(actor.accountId),
                "expiresAt": .string(now.adding(seconds: CheckoutReference.lifetimeSeconds).rfc3339),
            ]))
    }

    // MARK: - Shared

    private func requireManager(_ actor: SessionAccounts.Actor) throws {
        guard actor.manages else { throw APIError(403, "FORBIDDEN", "only an org:admin of the organization manages its keys") }
    }

    private func loadAccount(_ id: String) async throws -> Account {
        try await store.get(try DocumentPath(collection: Account.collection, id: id))?.decode(Account.self)
            ?? Account(id: id, tier: .free, entitlements: TierCatalog.standard.entitlements(for: .free))
    }

    private func accountKeys(_ accountId: String) async throws -> [(path: DocumentPath, record: APIKeyRecord)] {
        try await store.query(Self.keysQuery(accountId)).map { ($0.path, try $0.decode(APIKeyRecord.self)) }
    }

    static func keysQuery(_ accountId: String) -> DocumentQuery {
        DocumentQuery(collection: APIKeyRecord.collection).filter("accountId", .equal, .string(accountId))
    }

    static func status(of record: APIKeyRecord, now: Timestamp) -> String {
        if let revoked = record.revoked, revoked <= now { return "revoked" }
        if let expires = record.expires, expires <= now { return "expired" }
        return "active"
    }

    static func fields(_ record: APIKeyRecord, now: Timestamp) -> [String: JSONValue] {
        [
            "prefix": .string(record.displayPrefix), "name": record.name.map(JSONValue.string) ?? .null,
            "status": .string(status(of: record, now: now)), "created": .string(record.created.rfc3339),
            "expiresAt": record.expires.map { .string($0.rfc3339) } ?? .null,
            "revokedAt": record.revoked.map { .string($0.rfc3339) } ?? .null,
        ]
    }
}

/// `POST /v1/keys`' body: `{"name": "…", "expiresAt": "RFC 3339" | null}`.
struct KeyRequest: Sendable {
    var name: String
    var expires: Timestamp?

    init(_ body: Data, now: Timestamp) throws {
        guard let json = try? JSONValue.parse(body), let object = json.objectValue else {
            throw APIError(400, "INVALID_BODY", "the body is a JSON object: {\"name\": \"…\", \"expiresAt\": \"…\"}")
        }
        if let unknown = object.keys.first(where: { $0 != "name" && $0 != "expiresAt" }) {
            throw APIError(400, "INVALID_BODY", "unknown field \(unknown.prefix(40))")
        }
        guard let name = object["name"]?.stringValue, Self.isName(name) else {
            throw APIError(400, "INVALID_NAME", "name is 1 to 64 characters, no control characters, no leading or trailing space")
        }
        self.name = name
        switch object["expiresAt"] {
        case nil, .null?: expires = nil
        case let value?:
            guard let text = value.stringValue, let time = Timestamp(rfc3339: text) else {
                throw APIError(400, "INVALID_EXPIRY", "expiresAt is an RFC 3339 time such as 2027-01-01T00:00:00Z, or null")
            }
            guard time > now, time <= now.adding(seconds: AccountRoutes.maxExpirySeconds) else {
                throw APIError(400, "INVALID_EXPIRY", "expiresAt lies in the future, within five years")
            }
            expires = time
        }
    }

    /// 1 to 64 Unicode scalars (what JSON Schema's `maxLength` counts); no control
    /// character, no whitespace but the plain space, and none at either end; no invisible
    /// character that makes a name read as another (``invisible``). The OpenAPI document's
    /// `pattern` says the same.
    static func isName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard (1...64).contains(scalars.count), scalars.first != " ", scalars.last != " " else { return false }
        return scalars.allSatisfy { scalar in
            scalar == " "
                || (scalar.properties.generalCategory != .control && !scalar.properties.isWhitespace
                    && !invisible.contains { $0.contains(scalar.value) })
        }
    }

    /// Bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E–200F,
    /// U+202A–202E, U+2066–2069), zero-width characters (U+200B–200D, U+2060, U+FEFF) and
    /// the invisible operators (U+2061–2064): each can make a key's name in the dashboard
    /// read as another's.
    static let invisible: [ClosedRange<UInt32>] = [
        0x061C...0x061C, 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2064, 0x2066...0x2069, 0xFEFF...0xFEFF,
    ]
}

extension Int64 {
    fileprivate func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
