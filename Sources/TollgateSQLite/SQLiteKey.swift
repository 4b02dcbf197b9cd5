/// A document's collection and id as the fake stores them.
///
/// Firestore takes any UTF-8 in an id, U+0000 included, but SQLite's C string binding
/// (GRDB binds text with length -1) ends text at the first NUL: `acct_A\u{0}x` would be
/// written as `acct_A`, another tenant's document. The key escapes it instead —
/// U+0000 as `01 01`, U+0001 as `01 02` — which keeps every other id byte-identical and
/// keeps byte order, so `ORDER BY id` stays Firestore's order.
enum SQLiteKey {
    static func encode(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 <= 1 }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 4)
        for byte in text.utf8 {
            switch byte {
            case 0: out += [1, 1]
            case 1: out += [1, 2]
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> String {
        guard text.utf8.contains(1) else { return text }
        var out: [UInt8] = []
        var escaped = false
        for byte in text.utf8 {
            if escaped {
                out.append(byte == 1 ? 0 : 1)
                escaped = false
            } else if byte == 1 {
                escaped = true
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
