/// RFC 3986 percent-encoding of everything but the unreserved characters (letters, digits,
/// `-`, `.`, `_`, `~`), byte by byte in UTF-8: what Google's APIs expect for object names
/// and query values, and what V4 signed URLs sign.
public enum PercentEncoding {
    public static func unreserved(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    /// An object name as a URL path: each `/`-separated part encoded, the slashes kept.
    public static func objectPath(_ name: String) -> String {
        name.split(separator: "/", omittingEmptySubsequences: false).map { unreserved(String($0)) }.joined(separator: "/")
    }
}
