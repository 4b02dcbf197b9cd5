import Foundation
import TollgateEmulator
import TollgateModel
import TollgateRuntime
import TollgateStripe

// Fuzz targets for every decoder that reads untrusted bytes. Built with
// `swift build --sanitize=fuzzer`, libFuzzer drives `LLVMFuzzerTestOneInput` and
// `TOLLGATE_FUZZ_TARGET` picks the decoder; built plainly, `tollgate-fuzz TARGET FILE…`
// replays files through the same code (the regression corpus, in the tests).
// Every decoder must throw on bad input, never trap: a trap is the finding.

/// The decoders, by name. Each takes arbitrary bytes.
let targets: [String: @Sendable (Data) -> Void] = [
    "pubsub-envelope": { data in
        _ = try? PubSubEvent.decode(FunctionRequest(method: "POST", path: "/", headers: [("Content-Type", "application/json")], body: data))
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
        _ = try? PubSubEvent.decode(FunctionRequest(method: "POST", path: "/", headers: headers + [("ce-specversion", "1.0")], body: body))
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
    "jwt": { data in
        guard let token = try? JWT(String(decoding: data, as: UTF8.self)) else { return }
        _ = token.algorithm
        _ = token.claims["exp"]?.integerValue
    },
    "fixture": { data in
        _ = try? Fixture(json: data, url: URL(fileURLWithPath: "/nonexistent/fuzz.json"), name: "fuzz.json")
    },
]

let selected: (@Sendable (Data) -> Void)? = ProcessInfo.processInfo.environment["TOLLGATE_FUZZ_TARGET"].flatMap { targets[$0] }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let selected else {
        FileHandle.standardError.write(Data("set TOLLGATE_FUZZ_TARGET to one of \(targets.keys.sorted())\n".utf8))
        exit(2)
    }
    selected(Data(bytes: bytes, count: count))
    return 0
}

// The plain build: replay files through a target.
let arguments = CommandLine.arguments
if arguments.count >= 2, ProcessInfo.processInfo.environment["TOLLGATE_FUZZ_TARGET"] == nil {
    guard let target = targets[arguments[1]] else {
        FileHandle.standardError.write(Data("usage: tollgate-fuzz TARGET FILE…; targets: \(targets.keys.sorted())\n".utf8))
        exit(2)
    }
    for path in arguments.dropFirst(2) {
        guard let data = FileManager.default.contents(atPath: path) else {
            FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
            exit(1)
        }
        target(data)
    }
    print("\(arguments.count - 2) inputs through \(arguments[1]), no crash")
}
