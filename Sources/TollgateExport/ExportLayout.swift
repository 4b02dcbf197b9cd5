import TollgateModel

/// Where an export's objects live in the bucket (documented in the README):
///
/// ```
/// {prefix}YYYY/MM/DD/part-00000.ndjson.gz     records of the day, in ledger order
/// {prefix}YYYY/MM/DD/late-00000.ndjson.gz     records of earlier days that arrived late
/// {prefix}YYYY/MM/DD/manifest.json            the signed, hash-chained manifest
/// {prefix}YYYY/MM/DD/manifest.json.sig        its Ed25519 signature
/// {prefix}YYYY/MM/DD/accounts/{id}.ndjson.gz             one account's records (signed receipts)
/// {prefix}YYYY/MM/DD/accounts/{id}.receipt.json      its receipt
/// {prefix}YYYY/MM/DD/accounts/{id}.receipt.json.sig  the receipt's signature
/// {prefix}keys/{keyId}.json                   the public keys, by id
/// ```
///
/// `{id}` is the account id percent-encoded to letters, digits, `-`, `.`, `_` and `~`, so
/// an id never adds a directory.
public struct ExportLayout: Sendable {
    public var prefix: String

    public init(prefix: String = "usage/") { self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/" }

    /// Where exports go in the bucket: usage-export writes there, account-api finds
    /// receipts there, cleanup expires there.
    public static let prefixSetting = Setting(
        "TOLLGATE_EXPORT_PREFIX", default: "usage/", summary: "where exports go in the usage bucket (account-api finds receipts there too)")

    /// The layout under `TOLLGATE_EXPORT_PREFIX`.
    public init(environment: Environment) throws { self.init(prefix: try environment.required(Self.prefixSetting)) }

    public func directory(_ day: UTCDay) -> String { "\(prefix)\(day.pathComponent)/" }
    public func part(_ day: UTCDay, kind: String, index: Int) -> String {
        "\(directory(day))\(kind == "late" ? "late" : "part")-\(Hex.padded(index, width: 5)).ndjson.gz"
    }
    public func manifest(_ day: UTCDay) -> String { "\(directory(day))manifest.json" }
    public func signature(_ day: UTCDay) -> String { "\(directory(day))manifest.json.sig" }
    public func publicKey(_ keyId: String) -> String { "\(prefix)keys/\(keyId).json" }

    public func accountRecords(_ day: UTCDay, accountId: String) -> String { "\(accountStem(day, accountId)).ndjson.gz" }
    public func receipt(_ day: UTCDay, accountId: String) -> String { "\(accountStem(day, accountId)).receipt.json" }
    public func receiptSignature(_ day: UTCDay, accountId: String) -> String { "\(accountStem(day, accountId)).receipt.json.sig" }

    private func accountStem(_ day: UTCDay, _ accountId: String) -> String {
        "\(directory(day))accounts/\(PercentEncoding.unreserved(accountId))"
    }
}
