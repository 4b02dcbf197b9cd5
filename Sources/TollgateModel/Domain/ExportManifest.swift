import Foundation

/// The manifest of one day's usage export: every object with its SHA-256, record count
/// and time range, the per-account totals billed from it, and the SHA-256 of the previous
/// day's manifest, so the days form a hash chain. Written as canonical JSON (sorted keys,
/// no spaces, one trailing newline) and signed detached (``ExportSignature``).
public struct ExportManifest: Sendable, Hashable {
    public static let version: Int64 = 1

    public var day: UTCDay
    /// The ledger records exported: those the ledger took in during `day` (by `recorded`).
    public var recordedFrom: Timestamp
    public var recordedUntil: Timestamp
    /// The previous day's manifest; nil only for the first day of the chain.
    public var previous: Link?
    public var objects: [Object]
    public var accounts: [AccountTotal]
    /// The Ed25519 key that signs this manifest.
    public var keyId: String

    public struct Link: Sendable, Hashable {
        public var day: UTCDay
        public var sha256: String
        public init(day: UTCDay, sha256: String) {
            self.day = day
            self.sha256 = sha256
        }
    }

    public struct Object: Sendable, Hashable {
        /// `usage` for records of the day itself, `late` for records of earlier days that
        /// arrived after their own day was exported (corrections).
        public var kind: String
        public var name: String
        public var sha256: String
        public var bytes: Int64
        public var records: Int64
        public var units: Int64
        /// The earliest and latest event `time` of the records in it.
        public var firstTime: Timestamp
        public var lastTime: Timestamp

        public init(
            kind: String, name: String, sha256: String, bytes: Int64, records: Int64, units: Int64, firstTime: Timestamp,
            lastTime: Timestamp
        ) {
            self.kind = kind
            self.name = name
            self.sha256 = sha256
            self.bytes = bytes
            self.records = records
            self.units = units
            self.firstTime = firstTime
            self.lastTime = lastTime
        }
    }

    /// What one account used in the records of this export, late ones included: the
    /// amount its usage report bills.
    public struct AccountTotal: Sendable, Hashable {
        public var accountId: String
        public var records: Int64
        public var units: Int64
        public var lateRecords: Int64
        public var lateUnits: Int64

        public init(accountId: String, records: Int64 = 0, units: Int64 = 0, lateRecords: Int64 = 0, lateUnits: Int64 = 0) {
            self.accountId = accountId
            self.records = records
            self.units = units
            self.lateRecords = lateRecords
            self.lateUnits = lateUnits
        }
    }

    public init(
        day: UTCDay, recordedFrom: Timestamp, recordedUntil: Timestamp, previous: Link?, objects: [Object], accounts: [AccountTotal],
        keyId: String
    ) {
        self.day = day
        self.recordedFrom = recordedFrom
        self.recordedUntil = recordedUntil
        self.previous = previous
        self.objects = objects
        self.accounts = accounts
        self.keyId = keyId
    }

    public var records: Int64 { objects.reduce(0) { $0 + $1.records } }

    public var json: JSONValue {
        .object([
            "version": .integer(Self.version), "day": .string(day.description), "keyId": .string(keyId),
            "recordedFrom": .string(recordedFrom.rfc3339), "recordedUntil": .string(recordedUntil.rfc3339),
            "previous": previous.map { .object(["day": .string($0.day.description), "sha256": .string($0.sha256)]) } ?? .null,
            "records": .integer(records),
            "objects": .array(
                objects.map {
                    .object([
                        "kind": .string($0.kind), "name": .string($0.name), "sha256": .string($0.sha256), "bytes": .integer($0.bytes),
                        "records": .integer($0.records), "units": .integer($0.units), "firstTime": .string($0.firstTime.rfc3339),
                        "lastTime": .string($0.lastTime.rfc3339),
                    ])
                }),
            "accounts": .array(
                accounts.map {
                    .object([
                        "accountId": .string($0.accountId), "records": .integer($0.records), "units": .integer($0.units),
                        "lateRecords": .integer($0.lateRecords), "lateUnits": .integer($0.lateUnits),
                    ])
                }),
        ])
    }

    /// The exact bytes written and signed.
    public var canonicalBytes: [UInt8] { Array((json.rendered() + "\n").utf8) }

    /// Reads a manifest back. - Throws: `INVALID_ARGUMENT` saying what is wrong.
    public init(parsing bytes: [UInt8]) throws {
        func fail(_ what: String) -> TollgateError { TollgateError(.invalidArgument, "manifest: \(what)") }
        let json: JSONValue
        do { json = try JSONValue.parse(Data(bytes)) } catch { throw fail("not JSON") }
        func string(_ value: JSONValue?, _ name: String) throws -> String {
            guard let text = value?.stringValue else { throw fail("\(name) is missing") }
            return text
        }
        func integer(_ value: JSONValue?, _ name: String) throws -> Int64 {
            guard let number = value?.integerValue else { throw fail("\(name) is missing") }
            return number
        }
        func time(_ value: JSONValue?, _ name: String) throws -> Timestamp {
            guard let time = Timestamp(rfc3339: try string(value, name)) else { throw fail("\(name) is not RFC 3339") }
            return time
        }
        func day(_ value: JSONValue?, _ name: String) throws -> UTCDay {
            guard let day = UTCDay(try string(value, name)) else { throw fail("\(name) is not YYYY-MM-DD") }
            return day
        }
        guard try integer(json["version"], "version") == Self.version else { throw fail("unknown version") }
        self.day = try day(json["day"], "day")
        keyId = try string(json["keyId"], "keyId")
        recordedFrom = try time(json["recordedFrom"], "recordedFrom")
        recordedUntil = try time(json["recordedUntil"], "recordedUntil")
        if let link = json["previous"], link != .null {
            previous = Link(day: try day(link["day"], "previous.day"), sha256: try string(link["sha256"], "previous.sha256"))
        }
        objects = try (json["objects"]?.arrayValue ?? []).map {
            Object(
                kind: try string($0["kind"], "kind"), name: try string($0["name"], "name"), sha256: try string($0["sha256"], "sha256"),
                bytes: try integer($0["bytes"], "bytes"), records: try integer($0["records"], "records"),
                units: try integer($0["units"], "units"), firstTime: try time($0["firstTime"], "firstTime"),
                lastTime: try time($0["lastTime"], "lastTime"))
        }
        accounts = try (json["accounts"]?.arrayValue ?? []).map {
            AccountTotal(
                accountId: try string($0["accountId"], "accountId"), records: try integer($0["records"], "records"),
                units: try integer($0["units"], "units"), lateRecords: try integer($0["lateRecords"], "lateRecords"),
                lateUnits: try integer($0["lateUnits"], "lateUnits"))
        }
    }
}

/// The progress and outcome of one day's export: `exports/{YYYY-MM-DD}`.
public struct ExportState: Codable, Sendable, Hashable {
    public var status: String
    /// The day, `YYYY-MM-DD` as the document's id: the latest export is found by ordering
    /// on it, since Firestore refuses a descending scan of document names.
    public var day: String?
    public var manifest: String
    public var manifestSHA256: String
    public var objects: Int64
    public var records: Int64
    public var accounts: Int64
    public var keyId: String
    public var completed: Timestamp
    /// When `cleanup` last checked every object against the manifest.
    public var verified: Timestamp?
    /// Set once retention deleted the day's objects (the manifest stays, for the chain).
    public var objectsExpired: Timestamp?
    /// Set once retention deleted the day's ledger entries.
    public var ledgerDeleted: Timestamp?
    /// Signed usage receipts written, one per account whose tier has them.
    public var receipts: Int64?

    public init(
        day: UTCDay, manifest: String, manifestSHA256: String, objects: Int64, records: Int64, accounts: Int64, keyId: String,
        completed: Timestamp
    ) {
        status = "complete"
        self.day = day.description
        self.manifest = manifest
        self.manifestSHA256 = manifestSHA256
        self.objects = objects
        self.records = records
        self.accounts = accounts
        self.keyId = keyId
        self.completed = completed
    }

    public static let collection = "exports"
}

/// What `usage-report` sent to the billing provider for one account and day:
/// `usageReports/{YYYY-MM-DD}_{accountId}`.
public struct UsageReport: Codable, Sendable, Hashable {
    public var day: UTCDay
    public var accountId: String
    /// `reported`, or `no-customer` for an account without a Stripe customer.
    public var status: String
    public var customerId: String?
    public var eventName: String
    public var identifier: String
    public var value: Int64
    public var records: Int64
    public var reported: Timestamp
    /// The attempt that succeeded (1 for the first).
    public var attempt: Int64

    public init(
        day: UTCDay, accountId: String, status: String, customerId: String?, eventName: String, identifier: String, value: Int64,
        records: Int64, reported: Timestamp, attempt: Int64
    ) {
        self.day = day
        self.accountId = accountId
        self.status = status
        self.customerId = customerId
        self.eventName = eventName
        self.identifier = identifier
        self.value = value
        self.records = records
        self.reported = reported
        self.attempt = attempt
    }

    public static let collection = "usageReports"
    public static func id(day: UTCDay, accountId: String) -> String { "\(day)_\(accountId)" }
}

/// One account's signed usage receipt for a day, made for tiers with
/// `signedUsageReceipts`: the account's records of the day's export in an object of their
/// own, what they add up to, and the SHA-256 of the day's manifest they were drawn from.
/// The manifest itself names every account, so it is not the customer's to read; the
/// receipt is, signed with the same key. Canonical JSON, like the manifest.
public struct UsageReceipt: Sendable, Hashable {
    public static let version: Int64 = 1

    public var day: UTCDay
    public var accountId: String
    /// The account's records (kind `account`): the same lines as in the day's objects.
    public var object: ExportManifest.Object
    /// The account's totals as the manifest states them.
    public var total: ExportManifest.AccountTotal
    public var manifest: ExportManifest.Link
    public var keyId: String

    public init(
        day: UTCDay, accountId: String, object: ExportManifest.Object, total: ExportManifest.AccountTotal,
        manifest: ExportManifest.Link, keyId: String
    ) {
        self.day = day
        self.accountId = accountId
        self.object = object
        self.total = total
        self.manifest = manifest
        self.keyId = keyId
    }

    public var json: JSONValue {
        .object([
            "version": .integer(Self.version), "day": .string(day.description), "accountId": .string(accountId),
            "keyId": .string(keyId), "records": .integer(total.records), "units": .integer(total.units),
            "lateRecords": .integer(total.lateRecords), "lateUnits": .integer(total.lateUnits),
            "object": .object([
                "name": .string(object.name), "sha256": .string(object.sha256), "bytes": .integer(object.bytes),
                "records": .integer(object.records), "units": .integer(object.units),
                "firstTime": .string(object.firstTime.rfc3339), "lastTime": .string(object.lastTime.rfc3339),
            ]),
            "manifest": .object(["day": .string(manifest.day.description), "sha256": .string(manifest.sha256)]),
        ])
    }

    /// The exact bytes written and signed.
    public var canonicalBytes: [UInt8] { Array((json.rendered() + "\n").utf8) }
}
