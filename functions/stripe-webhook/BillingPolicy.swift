import TollgateModel

/// How Stripe's billing state becomes a tier and entitlements.
///
/// | status | effect |
/// |---|---|
/// | `active`, `trialing` | the price's tier |
/// | `past_due` | the price's tier, kept while Stripe retries the payment (grace) |
/// | `unpaid` | the price's tier, suspended: every request is refused (`DISABLED`) until paid |
/// | `incomplete` | Free: the first payment has not gone through yet |
/// | `incomplete_expired`, `canceled`, `paused` | Free |
public struct BillingPolicy: Sendable {
    public let priceTiers: [String: Tier]
    public let catalog: TierCatalog

    public init(priceTiers: [String: Tier], catalog: TierCatalog = .standard) {
        self.priceTiers = priceTiers
        self.catalog = catalog
    }

    /// Parses `TOLLGATE_PRICE_TIERS`: `price_A=pro,price_B=enterprise`.
    public init(priceTiersSetting: String, catalog: TierCatalog = .standard) throws(PolicyError) {
        var tiers: [String: Tier] = [:]
        for item in priceTiersSetting.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].hasPrefix("price_") || pair[0].hasPrefix("plan_"), let tier = Tier(rawValue: pair[1]) else {
                throw PolicyError(item: String(item))
            }
            tiers[pair[0]] = tier
        }
        self.init(priceTiers: tiers, catalog: catalog)
    }

    public struct PolicyError: Error, Sendable {
        public let item: String
    }

    /// The tier and entitlements for a subscription in `status` on `priceId`.
    /// - Throws: `INVALID_ARGUMENT` for a price no tier is configured for.
    public func resolve(status: SubscriptionStatus, priceId: String?, metadata: [String: String]) throws -> (Tier, Entitlements) {
        switch status {
        case .incomplete, .incompleteExpired, .canceled, .paused:
            return (.free, catalog.entitlements(for: .free))
        case .active, .trialing, .pastDue, .unpaid:
            guard let priceId, let tier = priceTiers[priceId] else {
                throw TollgateError(.invalidArgument, "price \(priceId ?? "(none)") is not mapped to a tier in TOLLGATE_PRICE_TIERS")
            }
            let entitlements = catalog.entitlements(for: tier, overrides: EnterpriseOverrides(metadata: metadata))
            return (tier, status == .unpaid ? entitlements.suspended : entitlements)
        }
    }
}
