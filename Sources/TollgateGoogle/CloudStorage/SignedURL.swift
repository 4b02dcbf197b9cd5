import Crypto
import Foundation
import TollgateModel

/// V4 signed URLs (`GOOG4-RSA-SHA256`): a time-limited GET of one object that needs no
/// credentials, so a customer can download an export. The signature is the service
/// account's: local with a key file, the IAM Credentials API on Cloud Run.
/// <https://cloud.google.com/storage/docs/access-control/signing-urls-manually>
public struct SignedURLBuilder: Sendable {
    public let credentials: any GoogleCredentials
    /// `https://storage.googleapis.com`, or an emulator's base.
    public let host: String
    public let scheme: String

    public init(credentials: any GoogleCredentials, baseURL: String = "https://storage.googleapis.com") {
        self.credentials = credentials
        let parts = baseURL.components(separatedBy: "://")
        scheme = parts.count == 2 ? parts[0] : "https"
        host = parts.count == 2 ? parts[1] : baseURL
    }

    /// The longest expiry V4 allows: seven days.
    public static let maxExpirySeconds: Int64 = SignedURLV4.expiries.upperBound

    /// - Throws: `INVALID_ARGUMENT` for an expiry outside 1 s … 7 days.
    public func url(bucket: String, object: String, method: String = "GET", expiresInSeconds: Int64, now: Timestamp) async throws
        -> String
    {
        try SignedURLV4.checkExpiry(expiresInSeconds)
        let email = try await credentials.serviceAccountEmail()
        let request = Self.canonical(
            bucket: bucket, object: object, method: method, host: host, email: email, expiresInSeconds: expiresInSeconds, now: now)
        let signature = try await credentials.signBlob(Array(request.stringToSign.utf8))
        return "\(scheme)://\(host)\(request.path)?\(request.query)&X-Goog-Signature=\(Hex.encode(signature))"
    }

    /// The parts of the signing: the canonical request and the string to sign over it.
    struct Canonical {
        var path: String
        var query: String
        var canonicalRequest: String
        var stringToSign: String
    }

    static func canonical(
        bucket: String, object: String, method: String, host: String, email: String, expiresInSeconds: Int64, now: Timestamp
    ) -> Canonical {
        let stamp = SignedURLV4.dateStamp(now)
        let date = String(stamp.prefix(8))
        let scope = "\(date)/auto/storage/goog4_request"
        // Object names keep their slashes; everything else outside the unreserved set is encoded.
        let path = "/\(PercentEncoding.unreserved(bucket))/" + PercentEncoding.objectPath(object)
        let parameters = [
            ("X-Goog-Algorithm", "GOOG4-RSA-SHA256"), ("X-Goog-Credential", "\(email)/\(scope)"), ("X-Goog-Date", stamp),
            ("X-Goog-Expires", String(expiresInSeconds)), ("X-Goog-SignedHeaders", "host"),
        ]
        let query = parameters.map { "\(PercentEncoding.unreserved($0.0))=\(PercentEncoding.unreserved($0.1))" }.joined(
            separator: "&")
        let canonicalRequest = [method, path, query, "host:\(host)", "", "host", "UNSIGNED-PAYLOAD"].joined(separator: "\n")
        let digest = Hex.encode(Array(SHA256.hash(data: Data(canonicalRequest.utf8))))
        let stringToSign = ["GOOG4-RSA-SHA256", stamp, scope, digest].joined(separator: "\n")
        return Canonical(path: path, query: query, canonicalRequest: canonicalRequest, stringToSign: stringToSign)
    }
}
