import Foundation
import TollgateModel

/// Which features an endpoint needs, decided from the path the gateway saw.
///
/// The endpoint comes from one header the gateway sets (`TOLLGATE_ENDPOINT_HEADER`,
/// default `X-Original-URI`), never from one the client could choose. Before matching it
/// is normalised as RFC 3986 §6.2.2 allows, so that spellings the API service treats as
/// one path cannot slip past its gate: the query and fragment are dropped, percent-encoded
/// unreserved characters decoded (`%70` → `p`), dot segments removed (§5.2.4), runs of
/// slashes collapsed. Prefixes match whole segments (`/v1/jobs` covers `/v1/jobs` and
/// `/v1/jobs/42`, not `/v1/jobsearch`) and ignore ASCII case, since many frameworks route
/// `/V1/jobs` to `/v1/jobs`: a gate errs toward requiring its feature.
///
/// For the same reason an endpoint is matched as every route an upstream could take it
/// for (``keys(_:)``): ASGI and WSGI servers decode `%2F` before routing (`/v1%2Fjobs` is
/// `/v1/jobs` to Starlette), some frameworks take `\` or `%5C` as a slash, and servlet
/// containers drop `;` path parameters (`/v1;x=1/jobs`). The gate requires the union of
/// their features and the price is the highest of theirs.
struct EndpointGate: Sendable {
    struct Rule: Sendable, Hashable {
        var prefix: String
        var feature: Feature
    }

    /// Longest prefix first.
    let rules: [Rule]

    init(_ pairs: [(prefix: String, feature: Feature)]) {
        rules = pairs.map { Rule(prefix: Self.key($0.prefix), feature: $0.feature) }
            .sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
    }

    /// The endpoint as the rules compare it: normalised, ASCII lowercased. Computed once per
    /// request and shared by the gate and ``EndpointCosts``.
    static func key(_ endpoint: String) -> String { normalize(endpoint).lowercasedASCII }

    /// Every route `endpoint` may reach upstream, each as ``key(_:)`` makes it: the endpoint
    /// itself; with `%2F`, `%5C` and `\` taken as `/`; without `;` path parameters (also
    /// `%3B`); and both. Usually one.
    static func keys(_ endpoint: String) -> [String] {
        let head = endpoint.prefix { $0 != "?" && $0 != "#" }
        var variants = [String(head)]
        let lowered = head.lowercased()
        if lowered.contains("%2f") || lowered.contains("%5c") || head.contains("\\") {
            variants.append(
                String(head).replacingOccurrences(of: "%2[fF]|%5[cC]|\\\\", with: "/", options: .regularExpression))
        }
        if head.contains(";") || lowered.contains("%3b") {
            variants += variants.map {
                $0.replacingOccurrences(of: "(;|%3[bB])[^/]*", with: "", options: .regularExpression)
            }
        }
        var keys: [String] = []
        for key in variants.map(key) where !keys.contains(key) { keys.append(key) }
        return keys
    }

    /// The features every matching rule requires (usually one), for every route the
    /// endpoint may reach.
    func features(for endpoint: String) -> Set<Feature> { features(forKeys: Self.keys(endpoint)) }

    func features(forKeys keys: [String]) -> Set<Feature> {
        var required: Set<Feature> = []
        for key in keys {
            for rule in rules where Self.path(key, isWithin: rule.prefix) { required.insert(rule.feature) }
        }
        return required
    }

    static func path(_ path: String, isWithin prefix: String) -> Bool {
        if prefix == "/" { return true }
        guard path.hasPrefix(prefix) else { return false }
        let rest = path.utf8.dropFirst(prefix.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }

    /// The path as RFC 3986 normalisation leaves it, always starting with `/` and with no
    /// trailing slash (except the root).
    static func normalize(_ uri: String) -> String {
        var bytes = Array(uri.utf8)
        if let end = bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) { bytes.removeSubrange(end...) }
        // An absolute URI (`https://host/path`): keep its path.
        if let scheme = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[..<scheme].allSatisfy(isSchemeByte),
            bytes[(scheme + 1)...].starts(with: Array("//".utf8))
        {
            let authority = scheme + 3
            bytes = Array(bytes[(bytes[authority...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex)...])
        }
        var segments: [[UInt8]] = []
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let decoded = decodeUnreserved(Array(segment))
            switch decoded {
            case Array(".".utf8): continue
            case Array("..".utf8): _ = segments.popLast()
            default: segments.append(decoded)
            }
        }
        return "/" + segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }

    /// Decodes `%XX` where XX is an unreserved character (ALPHA, DIGIT, `-._~`); other
    /// escapes keep their meaning and are only upper-cased.
    static func decodeUnreserved(_ segment: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(segment.count)
        var index = 0
        while index < segment.count {
            if segment[index] == UInt8(ascii: "%"), index + 2 < segment.count, let high = Hex.digit(segment[index + 1]),
                let low = Hex.digit(segment[index + 2])
            {
                let byte = high << 4 | low
                if isUnreserved(byte) {
                    out.append(byte)
                } else {
                    out.append(contentsOf: "%".utf8)
                    out.append(contentsOf: String(byte, radix: 16, uppercase: true).leftPadded(to: 2).utf8)
                }
                index += 3
            } else {
                out.append(segment[index])
                index += 1
            }
        }
        return out
    }

    private static func isUnreserved(_ c: UInt8) -> Bool {
        (65...90).contains(c) || (97...122).contains(c) || (48...57).contains(c) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
    }

    private static func isSchemeByte(_ c: UInt8) -> Bool {
        (65...90).contains(c) || (97...122).contains(c) || (48...57).contains(c) || c == 0x2B || c == 0x2D || c == 0x2E
    }
}

extension String {
    fileprivate var lowercasedASCII: String {
        String(decoding: utf8.map { (65...90).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// What a request costs by its endpoint (`TOLLGATE_ENDPOINT_COSTS`), so a gateway need not
/// send `X-Tollgate-Cost`: the longest prefix that covers the endpoint decides, matched as
/// ``EndpointGate`` matches (normalised, whole segments, ASCII case ignored); 1 elsewhere.
/// A gateway's `X-Tollgate-Cost` still wins, as the route's own.
struct EndpointCosts: Sendable {
    /// Longest prefix first.
    let rules: [(prefix: String, cost: Int64)]

    init(_ pairs: [(prefix: String, cost: Int64)]) {
        rules = pairs.map { (EndpointGate.key($0.prefix), $0.cost) }
            .sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
    }

    /// The highest price of the routes the endpoint may reach.
    /// - Parameter keys: the endpoint's ``EndpointGate/keys(_:)``.
    func cost(forKeys keys: [String]) -> Int64 {
        keys.map { key in rules.first { EndpointGate.path(key, isWithin: $0.prefix) }?.cost ?? 1 }.max() ?? 1
    }
}
