/// A customer account: `accounts/{id}`.
public struct Account: Codable, Sendable, Hashable {
    public var id: String
    public var tier: Tier
    public var entitlements: Entitlements
    /// The billing state Stripe last told us, if the account has ever subscribed.
    public var billing: BillingState?
    /// The last invoice outcome Stripe reported for the account.
    public var lastInvoice: InvoiceState?
    /// Whose account it is: a Clerk user's personal account or an organization's. Absent
    /// on accounts an operator or a Stripe customer made before Clerk said whose it is.
    public var owner: AccountOwner?
    /// When its owner was deleted in Clerk: a closed account admits no request and is never
    /// reopened. Its records stay until the retention rules remove them.
    public var closed: Timestamp?

    public init(
        id: String, tier: Tier, entitlements: Entitlements, billing: BillingState? = nil, lastInvoice: InvoiceState? = nil,
        owner: AccountOwner? = nil, closed: Timestamp? = nil
    ) {
        self.id = id
        self.tier = tier
        self.entitlements = entitlements
        self.billing = billing
        self.lastInvoice = lastInvoice
        self.owner = owner
        self.closed = closed
    }

    /// Whether requests may be admitted at all: open and not suspended.
    public var admitsRequests: Bool { closed == nil && entitlements.enabled }

    public static let collection = "accounts"
}

/// Stripe's subscription statuses.
/// <https://docs.stripe.com/api/subscriptions/object#subscription_object-status>
public enum SubscriptionStatus: String, Codable, Sendable, CaseIterable {
    case active, trialing
    case pastDue = "past_due"
    case unpaid, canceled, incomplete
    case incompleteExpired = "incomplete_expired"
    case paused
}

/// The subscription state derived from Stripe events, stored on the account.
public struct BillingState: Codable, Sendable, Hashable {
    public var customerId: String
    public var subscriptionId: String
    public var priceId: String?
    public var status: SubscriptionStatus
    public var currentPeriodStart: Timestamp?
    public var currentPeriodEnd: Timestamp?
    public var cancelAtPeriodEnd: Bool
    public var trialEnd: Timestamp?
    /// The `created` time and id of the last subscription event applied: an older event
    /// never overwrites newer state.
    public var lastEventCreated: Int64
    public var lastEventId: String

    public init(
        customerId: String, subscriptionId: String, priceId: String?, status: SubscriptionStatus,
        currentPeriodStart: Timestamp?, currentPeriodEnd: Timestamp?, cancelAtPeriodEnd: Bool, trialEnd: Timestamp?,
        lastEventCreated: Int64, lastEventId: String
    ) {
        self.customerId = customerId
        self.subscriptionId = subscriptionId
        self.priceId = priceId
        self.status = status
        self.currentPeriodStart = currentPeriodStart
        self.currentPeriodEnd = currentPeriodEnd
        self.cancelAtPeriodEnd = cancelAtPeriodEnd
        self.trialEnd = trialEnd
        self.lastEventCreated = lastEventCreated
        self.lastEventId = lastEventId
    }
}

/// The last invoice outcome Stripe reported for the account.
public struct InvoiceState: Codable, Sendable, Hashable {
    public var invoiceId: String
    public var paid: Bool
    public var attemptCount: Int64
    public var billingReason: String?
    /// The `created` time of the invoice event that set this state.
    public var eventCreated: Int64
    public var eventId: String

    public init(invoiceId: String, paid: Bool, attemptCount: Int64, billingReason: String?, eventCreated: Int64, eventId: String) {
        self.invoiceId = invoiceId
        self.paid = paid
        self.attemptCount = attemptCount
        self.billingReason = billingReason
        self.eventCreated = eventCreated
        self.eventId = eventId
    }
}

extension Account {
    /// Whether usage-export writes this account signed usage receipts: its tier's plan
    /// includes them (whatever entitlements were stored), or its entitlements were granted
    /// them beyond the tier (an enterprise override).
    public var hasSignedUsageReceipts: Bool {
        TierCatalog.standard.entitlements(for: tier).features.contains(.signedUsageReceipts)
            || entitlements.features.contains(.signedUsageReceipts)
    }
}
