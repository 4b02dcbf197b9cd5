import Testing
import TollgateModel

@Suite struct SecretRedactionTests {
    static let key = "tg_live_AbCd" + String(repeating: "x1Y2", count: 7)

    @Test func aWholeKey_keepsOnlyItsDisplayPrefix_wherever_itIs() {
        #expect(SecretRedaction.redact("DELETE /v1/keys/\(Self.key) 400") == "DELETE /v1/keys/tg_live_AbCd… 400")
        #expect(SecretRedaction.redact(#"{"path":"/v1/keys/\#(Self.key)?x=1"}"#) == #"{"path":"/v1/keys/tg_live_AbCd…?x=1"}"#)
        let test = "tg_test_" + String(repeating: "Z", count: 32)
        #expect(SecretRedaction.redact("key=\(test)") == "key=tg_test_ZZZZ…")
    }

    @Test func stripeAndWebhookSecrets_keepOnlyTheirKind() {
        #expect(SecretRedaction.redact("Bearer sk_live_51Habcdefgh") == "Bearer sk_live_…")
        #expect(SecretRedaction.redact("rk_test_12345678 and whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == "rk_test_… and whsec_…")
    }

    @Test func displayPrefixes_andLookalikes_stayAsTheyAre() {
        for text in [
            "prefix tg_live_AbCd revoked", "task_test_12345678", "disk_live_abcdefghij", "whsec_short", "plain line", "tg_live_",
            "mask_live_0123456789",
        ] {
            #expect(SecretRedaction.redact(text) == text)
        }
    }
}
