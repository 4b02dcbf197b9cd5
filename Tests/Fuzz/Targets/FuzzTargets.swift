import Foundation
import TollgateAuth
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateStripe

/// The fuzz targets: every decoder that reads untrusted bytes, each fed arbitrary bytes.
/// A decoder must throw on bad input, never trap: a trap is the finding. libFuzzer drives
/// them through `tollgate-fuzz` (Tests/Fuzz/run.sh); the tests replay the seeds and every
/// earlier finding through them in-process.
public enum FuzzTargets {
    /// Every target, by name: the decoders and the functions' whole paths (``PathTargets``).
    public static let all: [String: @Sendable (Data) -> Void] = decoders.merging(PathTargets.all) { decoder, _ in decoder }

    /// The decoders, by name. Each takes arbitrary bytes.
    public static let decoders: [String: @Sendable (Data) -> Void] = [
        "pubsub-envelope": { data in
            _ = try? PubSubEvent.decode(
                FunctionRequest(method: "POST", path: "/", headers: [("Content-Type", "application/json")], body: data))
        },
        "cloudevent": { data in
            _ = try? PubSubEvent.decode(
                FunctionRequest(method: "POST", path: "/", headers: [("Content-Type", "application/cloudevents+json")], body: data))
            // Binary mode: the first line holds the ce- headers as `name: value;` pairs.
            let text = String(decoding: data, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let headers = (parts.first ?? "").split(separator: ";").compactMap { pair -> (name: String, value: String)? in
                guard let colon = pair.firstIndex(of: ":") else { return nil }
                return (String(pair[..<colon]), String(pair[pair.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
            let body = Data((parts.count > 1 ? parts[1] : "").utf8)
            _ = try? PubSubEvent.decode(
                FunctionRequest(method: "POST", path: "/", headers: headers + [("ce-specversion", "1.0")], body: body))
        },
        "stripe-signature": { data in
            // The first line is the Stripe-Signature header, the rest the body it signs.
            let text = String(decoding: data, as: UTF8.self)
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            let verifier = StripeSignatureVerifier(secrets: ["whsec_fuzz"])
            _ = try? verifier.verify(
                header: parts.first.map(String.init), body: Data((parts.count > 1 ? parts[1] : "").utf8),
                now: Timestamp(secondsSinceEpoch: 1_767_225_600))
        },
        "stripe-event": { data in
            guard let event = try? StripeEvent(json: data) else { return }
            _ = try? StripeSubscription(event.object)
            _ = try? StripeInvoice(event.object)
        },
        "checkout-reference": { data in
            // Any text is refused or names an identifier; a reference minted for an
            // identifier made of the input always names that account.
            let signer = try! CheckoutReferenceSigner(secrets: [String(repeating: "f", count: 32)])
            let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
            if case .success(let reference) = signer.verify(String(decoding: data, as: UTF8.self), at: now) {
                precondition(InputBounds.isIdentifier(reference.accountId), "a verified reference names a non-identifier")
            }
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-".utf8)
            let accountId = String(decoding: data.prefix(128).map { alphabet[Int($0) % alphabet.count] }, as: UTF8.self)
            guard InputBounds.isIdentifier(accountId) else { return }
            var random = SystemRandomNumberGenerator()
            let text = signer.mint(accountId: accountId, now: now, using: &random)
            precondition((try? signer.verify(text, at: now).get().accountId) == accountId, "a minted reference does not verify")
        },
        "jwt": { data in
            guard let token = try? JWT(String(decoding: data, as: UTF8.self)) else { return }
            _ = token.algorithm
            _ = token.claims["exp"]?.integerValue
        },
        "fixture": { data in
            _ = try? Fixture(json: data, url: URL(fileURLWithPath: "/nonexistent/fuzz.json"), name: "fuzz.json")
        },
    ]
}
