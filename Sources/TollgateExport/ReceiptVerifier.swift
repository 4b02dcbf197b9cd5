import Crypto
import Foundation
import TollgateModel

/// Checks a signed usage receipt as its customer can, from the downloaded files alone:
/// the receipt's signature under a trusted key, then the records object against the
/// SHA-256, size, record count and units the receipt states.
public enum ReceiptVerifier {
    public enum Verdict: String, Sendable {
        case valid
        /// The receipt was altered, or is not signed by the trusted key.
        case alteredReceipt = "altered receipt"
        /// The records do not match what the receipt says of them.
        case alteredRecords = "altered records"
        /// The signature names a key that is not the trusted one.
        case unknownKey = "unknown key"
    }

    /// - Parameter gunzip: the records' gzip undone (zlib lives with the tools, not here).
    /// - Returns: the verdict and a line saying why (the receipt's day, account and totals
    ///   when valid).
    public static func verify(
        receipt: [UInt8], signature: [UInt8], records: [UInt8], trustedKey: ExportPublicKey, gunzip: ([UInt8]) throws -> [UInt8]
    ) -> (Verdict, String) {
        guard let signed = try? ExportSignature(document: signature) else { return (.alteredReceipt, "the signature is unreadable") }
        guard signed.keyId == trustedKey.keyId else { return (.unknownKey, "signed by key \(signed.keyId), not \(trustedKey.keyId)") }
        guard trustedKey.isValid(signed, for: receipt) else { return (.alteredReceipt, "the signature does not verify") }
        guard let json = try? JSONValue.parse(Data(receipt)), let object = json["object"],
            let sha256 = object["sha256"]?.stringValue, let bytes = object["bytes"]?.integerValue,
            let count = object["records"]?.integerValue, let units = object["units"]?.integerValue
        else { return (.alteredReceipt, "the receipt is not a usage receipt") }
        guard Int64(records.count) == bytes, Hex.encode(SHA256.hash(data: records)) == sha256 else {
            return (.alteredRecords, "the records do not match the receipt's SHA-256 and size")
        }
        // The SHA-256 already binds the bytes; counting them again says what they hold.
        guard let plain = try? gunzip(records) else { return (.alteredRecords, "the records are not gzip") }
        let lines = plain.split(separator: 0x0A)
        let total = lines.reduce(Int64(0)) { sum, line in sum + ((try? JSONValue.parse(Data(line)))?["units"]?.integerValue ?? 0) }
        guard Int64(lines.count) == count, total == units else {
            return (.alteredRecords, "the records hold \(lines.count) records (\(total) units), the receipt says \(count) (\(units))")
        }
        let day = json["day"]?.stringValue ?? "?"
        let account = json["accountId"]?.stringValue ?? "?"
        return (.valid, "\(day) \(account): \(count) records, \(units) units")
    }
}
