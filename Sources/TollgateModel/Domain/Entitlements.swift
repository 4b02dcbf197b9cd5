/// A pricing tier.
public enum Tier: String, Codable, Sendable, CaseIterable, Hashable {
    case free, pro, enterprise
}

/// A feature a tier may grant.
public enum Feature: String, Codable, Sendable, CaseIterable, Hashable, Comparable {
    case asyncJobs, diffusionGating, signedUsageReceipts, priorityQueue

    public static func < (lhs: Feature, rhs: Feature) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What an account may do: whether it may call the API at all, its features and limits.
public struct Entitlements: Codable, Sendable, Hashable {
    /// False while the account is suspended (an unpaid subscription): every request is
    /// refused with `DISABLED`.
    public var enabled: Bool
    public var features: [Feature]
    public var monthlyQuotaUnits: Int64
    public var maxNodes: Int64
    public var maxDimensions: Int64

    public init(enabled: Bool = true, features: [Feature], monthlyQuotaUnits: Int64, maxNodes: Int64, maxDimensions: Int64) {
        self.enabled = enabled
        self.features = features.sorted()
        self.monthlyQuotaUnits = monthlyQuotaUnits
        self.maxNodes = maxNodes
        self.maxDimensions = maxDimensions
    }

    public func has(_ feature: Feature) -> Bool { enabled && features.contains(feature) }

    /// The plain-JSON form, as documents and verdicts show it.
    public var plainJSON: JSONValue {
        .object([
            "enabled": .bool(enabled), "features": .array(features.map { .string($0.rawValue) }),
            "monthlyQuotaUnits": .integer(monthlyQuotaUnits), "maxNodes": .integer(maxNodes), "maxDimensions": .integer(maxDimensions),
        ])
    }

    /// The same entitlements, suspended.
    public var suspended: Entitlements {
        var copy = self
        copy.enabled = false
        return copy
    }
}

/// The entitlements of each tier. Pro is Free plus 50% on every limit and the paid
/// features; Enterprise is custom (its defaults, overridden per customer through the
/// subscription's metadata, see ``EnterpriseOverrides``).
public struct TierCatalog: Sendable, Hashable {
    public var tiers: [Tier: Entitlements]

    public init(tiers: [Tier: Entitlements]) { self.tiers = tiers }

    public static let standard: TierCatalog = {
        let free = Entitlements(features: [], monthlyQuotaUnits: 10_000, maxNodes: 100, maxDimensions: 2)
        let pro = Entitlements(
            features: [.asyncJobs, .diffusionGating, .signedUsageReceipts],
            monthlyQuotaUnits: free.monthlyQuotaUnits * 3 / 2, maxNodes: free.maxNodes * 3 / 2,
            maxDimensions: free.maxDimensions * 3 / 2)
        let enterprise = Entitlements(
            features: Feature.allCases, monthlyQuotaUnits: 1_000_000, maxNodes: 10_000, maxDimensions: 16)
        return TierCatalog(tiers: [.free: free, .pro: pro, .enterprise: enterprise])
    }()

    public func entitlements(for tier: Tier, overrides: EnterpriseOverrides = .init()) -> Entitlements {
        var base = tiers[tier] ?? Self.standard.tiers[tier]!
        guard tier == .enterprise else { return base }
        if let units = overrides.monthlyQuotaUnits { base.monthlyQuotaUnits = units }
        if let nodes = overrides.maxNodes { base.maxNodes = nodes }
        if let dimensions = overrides.maxDimensions { base.maxDimensions = dimensions }
        return base
    }
}

/// Per-customer limits for Enterprise, read from the subscription's metadata keys
/// `tollgate_monthly_quota_units`, `tollgate_max_nodes` and `tollgate_max_dimensions`.
public struct EnterpriseOverrides: Sendable, Hashable {
    public var monthlyQuotaUnits: Int64?
    public var maxNodes: Int64?
    public var maxDimensions: Int64?

    public init(monthlyQuotaUnits: Int64? = nil, maxNodes: Int64? = nil, maxDimensions: Int64? = nil) {
        self.monthlyQuotaUnits = monthlyQuotaUnits
        self.maxNodes = maxNodes
        self.maxDimensions = maxDimensions
    }

    /// A value that is not a whole number within ``InputBounds/entitlementLimit`` is
    /// ignored (the tier's default applies), so `used + cost` can never overflow.
    public init(metadata: [String: String]) {
        func positive(_ key: String) -> Int64? {
            metadata[key].flatMap { Int64($0) }.flatMap { InputBounds.entitlementLimit.contains($0) ? $0 : nil }
        }
        self.init(
            monthlyQuotaUnits: positive("tollgate_monthly_quota_units"), maxNodes: positive("tollgate_max_nodes"),
            maxDimensions: positive("tollgate_max_dimensions"))
    }
}
