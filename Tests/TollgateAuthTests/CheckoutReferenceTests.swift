import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

@Suite struct CheckoutReferenceTests {
    let secret = "checkout-reference-test-secret-0000000000"
    let minted = Timestamp(secondsSinceEpoch: 1_767_225_600)

    func mint(_ accountId: String, secrets: [String]? = nil) throws -> String {
        var random = SystemRandomNumberGenerator()
        return try CheckoutReferenceSigner(secrets: secrets ?? [secret]).mint(accountId: accountId, now: minted, using: &random)
    }

    /// Stripe: `client_reference_id` is up to 200 characters of letters, digits, `-` and `_`.
    @Test func aReference_fitsStripesClientReferenceID_forTheLongestAccountId() throws {
        for accountId in ["user_2TgAdaLovelace000001", String(repeating: "a-_", count: 42) + "zz"] {
            let text = try mint(accountId)
            #expect(text.utf8.count <= 200)
            #expect(
                text.utf8.allSatisfy { $0 == 45 || $0 == 95 || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
            )
            let verified = try CheckoutReferenceSigner(secrets: [secret]).verify(text, at: minted)
            #expect(try verified.get().accountId == accountId)
        }
        #expect(try mint("acct_1") != mint("acct_1"), "a nonce makes every reference unique")
    }

    @Test func aReference_namesItsAccount_untilItExpires_judgedAtTheSessionsCreation() throws {
        let signer = try CheckoutReferenceSigner(secrets: [secret])
        let text = try mint("org_2TgAcme")
        #expect(try signer.verify(text, at: minted.adding(seconds: CheckoutReference.lifetimeSeconds - 1)).get().accountId == "org_2TgAcme")
        #expect(signer.verify(text, at: minted.adding(seconds: CheckoutReference.lifetimeSeconds)) == .failure(.expired))
    }

    @Test func bareIds_forgeries_andEditedReferences_nameNoAccount() throws {
        let signer = try CheckoutReferenceSigner(secrets: [secret])
        let text = try mint("org_2TgAcme")
        #expect(signer.verify("org_2TgAcme", at: minted) == .failure(.notAReference))
        #expect(signer.verify(try mint("org_2TgAcme", secrets: [String(repeating: "x", count: 40)]), at: minted) == .failure(.forged))
        // Another account, a later expiry, another nonce, a flipped MAC digit: each breaks the MAC.
        let parts = text.split(separator: "_", maxSplits: 4).map(String.init)
        let edits = [
            parts[0...3].joined(separator: "_") + "_org_2TgOther",
            [parts[0], String(Int64(parts[1])! + 86_400), parts[2], parts[3], parts[4]].joined(separator: "_"),
            [parts[0], parts[1], String(parts[2].reversed()), parts[3], parts[4]].joined(separator: "_"),
            [parts[0], parts[1], parts[2], (parts[3].first == "0" ? "1" : "0") + parts[3].dropFirst(), parts[4]].joined(separator: "_"),
        ]
        for edited in edits where edited != text { #expect(signer.verify(edited, at: minted) == .failure(.forged), "\(edited)") }
        for malformed in [
            "tgcr1_", "tgcr1_x_0011223344556677_" + String(repeating: "0", count: 32) + "_a",
            parts[0...3].joined(separator: "_") + "_acct/../x",
            parts[0...2].joined(separator: "_") + "_" + parts[3].uppercased() + "_" + parts[4],
            parts[0...3].joined(separator: "_") + "_",
        ] {
            #expect(signer.verify(malformed, at: minted) == .failure(.malformed), "\(malformed)")
        }
    }

    @Test func whileRotating_theFirstSecretMints_andEitherVerifies() throws {
        let old = String(repeating: "o", count: 32)
        let new = String(repeating: "n", count: 32)
        let rotating = try CheckoutReferenceSigner(secrets: [new, old])
        #expect(try rotating.verify(try mint("acct_1", secrets: [old]), at: minted).get().accountId == "acct_1")
        #expect(
            try CheckoutReferenceSigner(secrets: [new]).verify(try mint("acct_1", secrets: [new, old]), at: minted).get().accountId
                == "acct_1")
    }

    @Test func theSecret_isOneOrTwoOfAtLeast32Bytes_andNeverEchoed() {
        for value in ["", "short", "a,b,c", "\(secret),\(secret),\(secret)"] {
            do {
                _ = try CheckoutReferenceSigner(environment: Environment(["TOLLGATE_CHECKOUT_SECRET": value]))
                Issue.record("accepted \(value.count) characters")
            } catch let error as ConfigurationError {
                #expect(error.setting == "TOLLGATE_CHECKOUT_SECRET")
                #expect(value.isEmpty || !error.description.contains(value))
            } catch { Issue.record("\(error)") }
        }
    }
}
