import Foundation
import Synchronization
import TollgateModel

/// Secret Manager versions (`sm://projects/P/secrets/NAME[/versions/V]`, `latest` when no
/// version is given): the payload's CRC32C is checked against the one the service sent,
/// and a value is cached for `ttl` so a rotation reaches a running instance without a
/// request per use.
public final class SecretManagerClient: Sendable {
    let api: GoogleAPIClient
    let clock: any TollgateModel.Clock
    let ttlSeconds: Int64
    private let cache = Mutex<[String: (value: String, fetched: Timestamp)]>([:])

    public init(api: GoogleAPIClient, clock: any TollgateModel.Clock = SystemClock(), ttlSeconds: Int64 = 300) {
        self.api = api
        self.clock = clock
        self.ttlSeconds = ttlSeconds
    }

    /// The version's resource name for an `sm://` reference.
    /// - Throws: `INVALID_ARGUMENT` for anything else.
    public static func versionName(_ reference: String) throws -> String {
        guard reference.hasPrefix("sm://") else { throw TollgateError(.invalidArgument, "not an sm:// reference") }
        let parts = reference.dropFirst("sm://".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 || parts.count == 6, parts[0] == "projects", parts[2] == "secrets", !parts[1].isEmpty, !parts[3].isEmpty,
            parts.count == 4 || (parts[4] == "versions" && !parts[5].isEmpty)
        else {
            throw TollgateError(.invalidArgument, "a secret reference is sm://projects/P/secrets/NAME[/versions/V]")
        }
        return "projects/\(parts[1])/secrets/\(parts[3])/versions/\(parts.count == 6 ? parts[5] : "latest")"
    }

    /// - Throws: `NOT_FOUND`, `PERMISSION_DENIED`, or `UNAVAILABLE` when the payload's
    ///   checksum does not match (corrupted in transit: retry).
    public func access(_ reference: String) async throws -> String {
        let name = try Self.versionName(reference)
        let now = clock.now()
        if let hit = cache.withLock({ $0[name] }), now.secondsSinceEpoch - hit.fetched.secondsSinceEpoch < ttlSeconds { return hit.value }
        let answer = try await api.json("GET", "/v1/\(name):access", idempotent: true)
        guard let encoded = answer["payload"]?["data"]?.stringValue, let data = Data(base64Encoded: encoded) else {
            throw TollgateError(.unavailable, "secretmanager answered without payload.data")
        }
        if let sent = answer["payload"]?["dataCrc32c"].flatMap({ $0.stringValue.flatMap { Int64($0) } ?? $0.integerValue }) {
            guard UInt32(truncatingIfNeeded: sent) == CRC32C.checksum(Array(data)) else {
                throw TollgateError(.unavailable, "secret \(name): payload checksum mismatch")
            }
        }
        guard let value = String(data: data, encoding: .utf8) else {
            throw TollgateError(.invalidArgument, "secret \(name) is not UTF-8 text")
        }
        cache.withLock { $0[name] = (value, now) }
        return value
    }
}

/// CRC-32C (Castagnoli), the checksum Secret Manager and Cloud Storage use.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
