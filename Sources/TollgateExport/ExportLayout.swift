import TollgateModel

/// Where an export's objects live in the bucket (documented in the README):
///
/// ```
/// {prefix}YYYY/MM/DD/part-00000.ndjson.gz     records of the day, in ledger order
/// {prefix}YYYY/MM/DD/late-00000.ndjson.gz     records of earlier days that arrived late
/// {prefix}YYYY/MM/DD/manifest.json            the signed, hash-chained manifest
/// {prefix}YYYY/MM/DD/manifest.json.sig        its Ed25519 signature
/// {prefix}keys/{keyId}.json                   the public keys, by id
/// ```
public struct ExportLayout: Sendable {
    public var prefix: String

    public init(prefix: String = "usage/") { self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/" }

    public func directory(_ day: UTCDay) -> String { "\(prefix)\(day.pathComponent)/" }
    public func part(_ day: UTCDay, kind: String, index: Int) -> String {
        "\(directory(day))\(kind == "late" ? "late" : "part")-\(Hex.padded(index, width: 5)).ndjson.gz"
    }
    public func manifest(_ day: UTCDay) -> String { "\(directory(day))manifest.json" }
    public func signature(_ day: UTCDay) -> String { "\(directory(day))manifest.json.sig" }
    public func publicKey(_ keyId: String) -> String { "\(prefix)keys/\(keyId).json" }
}
