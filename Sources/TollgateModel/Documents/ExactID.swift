/// An identifier as the stores compare it: byte for byte (UTF-8).
///
/// Swift's `String ==` and hashing treat canonically equivalent text as equal (`"é"`
/// written as one scalar or as `e` plus a combining accent), while Firestore, SQLite and
/// every id Clerk or Stripe issues compare bytes. A dictionary or cache keyed by `String`
/// would then give one tenant another's entry; key it by `ExactID` instead.
public struct ExactID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let utf8: [UInt8]

    public init(_ text: String) { utf8 = Array(text.utf8) }

    public var description: String { String(decoding: utf8, as: UTF8.self) }

    public static func < (lhs: ExactID, rhs: ExactID) -> Bool { lhs.utf8.lexicographicallyPrecedes(rhs.utf8) }
}
