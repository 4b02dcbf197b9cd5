import Foundation

/// What log lines never carry: a whole Tollgate API key (`tg_live_` or `tg_test_` and 32
/// characters) keeps only the display prefix it is known by (`tg_live_AbCd…`); a Stripe
/// secret or restricted key (`sk_…`, `rk_…`) and a webhook signing secret (`whsec_…`)
/// keep only their kind. Applied to every rendered line, so a key that reaches a path, a
/// header or an error message is redacted wherever it is logged.
public enum SecretRedaction {
    /// Each shape: what stays of it, and what may follow (at least `minimum` of `characters`).
    private static let shapes: [(prefix: String, kept: Int, minimum: Int, characters: @Sendable (UInt8) -> Bool)] = [
        ("tg_live_", 4, 5, isAlphanumeric), ("tg_test_", 4, 5, isAlphanumeric),
        ("sk_live_", 0, 8, isAlphanumeric), ("sk_test_", 0, 8, isAlphanumeric),
        ("rk_live_", 0, 8, isAlphanumeric), ("rk_test_", 0, 8, isAlphanumeric),
        ("whsec_", 0, 8, isBase64),
    ]
    static let marker = Array("…".utf8)

    /// `text` with every secret shape cut down to what identifies it.
    public static func redact(_ text: String) -> String {
        // Most lines hold none: one scan for the shapes' common bytes decides.
        guard text.utf8.contains(UInt8(ascii: "_")), text.contains("k_") || text.contains("tg_") || text.contains("whsec_")
        else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        scanning: while index < bytes.count {
            // A shape starts a word: `task_test_…` holds no Stripe key.
            let startsWord = index == 0 || !(isAlphanumeric(bytes[index - 1]) || bytes[index - 1] == UInt8(ascii: "_"))
            for shape in shapes where startsWord && bytes[index...].starts(with: shape.prefix.utf8) {
                let start = index + shape.prefix.utf8.count
                var end = start
                while end < bytes.count, shape.characters(bytes[end]) { end += 1 }
                if end - start >= shape.minimum {
                    out.append(contentsOf: bytes[index..<(start + shape.kept)])
                    out.append(contentsOf: marker)
                    index = end
                    continue scanning
                }
            }
            out.append(bytes[index])
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
    }
}
