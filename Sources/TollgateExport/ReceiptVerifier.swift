import Crypto
import Foundation
import TollgateModel

/// Checks a signed usage receipt as its customer can, from the downloaded files alone
/// (docs/formats.md, "Verifying a receipt"): the receipt's signature under a trusted key,
/// that it is the receipt of the account and day asked about, then the records object
/// against the SHA-256, size, record count and units the receipt states, line by line.
public enum ReceiptVerifier {
    public enum Verdict: String, Sendable {
        case valid
        /// The receipt was altered, or is not signed by the trusted key.
        case alteredReceipt = "altered receipt"
        /// The records do not match what the receipt says of them.
        case alteredRecords = "altered records"
        /// The signature names a key that is not the trusted one.
        case unknownKey = "unknown key"
        /// A genuine receipt of another account than the one asked about.
        case otherAccount = "another account"
        /// A genuine receipt of the account, for another day than the one asked about.
        case otherDay = "another day"
    }

    /// - Parameters:
    ///   - account: the account the receipt must be of (the customer's own).
    ///   - day: the day it must be for.
    ///   - gunzip: the records' gzip undone (zlib lives with the tools, not here).
    /// - Returns: the verdict and a line saying why (the receipt's day, account and totals
    ///   when valid).
    public static func verify(
        receipt: [UInt8], signature: [UInt8], records: [UInt8], trustedKey: ExportPublicKey, account: String, day: UTCDay,
        gunzip: ([UInt8]) throws -> [UInt8]
    ) -> (Verdict, String) {
        guard let signed = try? ExportSignature(document: signature) else { return (.alteredReceipt, "the signature is unreadable") }
        guard signed.keyId == trustedKey.keyId else { return (.unknownKey, "signed by key \(signed.keyId), not \(trustedKey.keyId)") }
        guard trustedKey.isValid(signed, for: receipt) else { return (.alteredReceipt, "the signature does not verify") }
        guard let stated = try? StatedReceipt(receipt) else { return (.alteredReceipt, "the receipt is not a version 1 usage receipt") }
        guard stated.keyId == signed.keyId else { return (.alteredReceipt, "the receipt names key \(stated.keyId), its signature another") }
        // Signed and genuine, but is it the one asked about? A receipt proves nothing to the
        // customer unless it is theirs, for the day in question.
        guard stated.accountId == account else { return (.otherAccount, "the receipt is of account \(stated.accountId), not \(account)") }
        guard stated.day == day.description else { return (.otherDay, "the receipt is for \(stated.day), not \(day)") }
        let name = "\(day.pathComponent)/accounts/\(PercentEncoding.unreserved(account)).ndjson.gz"
        guard stated.objectName.hasSuffix("/" + name) || stated.objectName == name else {
            return (.alteredReceipt, "the receipt's records object \(stated.objectName) is not the account's object for the day")
        }
        guard Int64(records.count) == stated.bytes, Hex.encode(SHA256.hash(data: records)) == stated.sha256 else {
            return (.alteredRecords, "the records do not match the receipt's SHA-256 and size")
        }
        // The SHA-256 already binds the bytes; reading them says what they hold.
        guard let plain = try? gunzip(records) else { return (.alteredRecords, "the records are not gzip") }
        var (count, units) = (Int64(0), Int64(0))
        for line in plain.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast(plain.last == 0x0A ? 1 : 0) {
            guard let record = try? JSONValue.parse(Data(line)), record["accountId"]?.stringValue == account else {
                return (.alteredRecords, "record \(count + 1) is not a record of \(account)")
            }
            count += 1
            units += record["units"]?.integerValue ?? 0
        }
        guard count == stated.objectRecords, units == stated.objectUnits, count == stated.records, units == stated.units else {
            return (
                .alteredRecords,
                "the records hold \(count) records (\(units) units), the receipt says \(stated.records) (\(stated.units))"
            )
        }
        return (.valid, "\(stated.day) \(stated.accountId): \(count) records, \(units) units, manifest \(stated.manifestSHA256)")
    }

    /// What a version 1 receipt states, read strictly: a missing or mistyped field is an
    /// altered receipt.
    private struct StatedReceipt {
        var day: String
        var accountId: String
        var keyId: String
        var records: Int64
        var units: Int64
        var objectName: String
        var sha256: String
        var bytes: Int64
        var objectRecords: Int64
        var objectUnits: Int64
        var manifestSHA256: String

        init(_ bytes: [UInt8]) throws {
            let json = try JSONValue.parse(Data(bytes))
            let object = json["object"]
            guard json["version"]?.integerValue == UsageReceipt.version, let day = json["day"]?.stringValue,
                let accountId = json["accountId"]?.stringValue, let keyId = json["keyId"]?.stringValue,
                let records = json["records"]?.integerValue, let units = json["units"]?.integerValue,
                let name = object?["name"]?.stringValue, let sha256 = object?["sha256"]?.stringValue,
                let size = object?["bytes"]?.integerValue, let objectRecords = object?["records"]?.integerValue,
                let objectUnits = object?["units"]?.integerValue, let manifest = json["manifest"]?["sha256"]?.stringValue
            else { throw TollgateError(.invalidArgument, "not a usage receipt") }
            (self.day, self.accountId, self.keyId, self.records, self.units) = (day, accountId, keyId, records, units)
            (objectName, self.sha256, self.bytes, self.objectRecords, self.objectUnits) = (name, sha256, size, objectRecords, objectUnits)
            manifestSHA256 = manifest
        }
    }
}
