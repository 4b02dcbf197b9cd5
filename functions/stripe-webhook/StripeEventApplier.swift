import Foundation
import Logging
import TollgateModel
import TollgateStripe

/// Applies one verified Stripe event to the account it concerns, exactly once:
/// the account, the event's dedupe marker and (when entitlements change) an outbox
/// entry commit in one transaction; the outbox entry is published after the commit and
/// then removed, so a crash between the two is repaired by Stripe's redelivery.
public struct StripeEventApplier: Sendable {
    public enum Outcome: String, Sendable {
        /// The event changed the account.
        case applied
        /// A newer event for the subscription was already applied; only the marker was written.
        case stale
        /// The event was processed before.
        case duplicate
        /// A type Tollgate does not act on.
        case ignored
    }

    public static let subscriptionTypes: Set<String> = [
        "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
    ]
    public static let invoiceTypes: Set<String> = ["invoice.payment_succeeded", "invoice.payment_failed"]

    let store: any DocumentStore
    let publisher: any Publisher
    let policy: BillingPolicy

    public init(store: any DocumentStore, publisher: any Publisher, policy: BillingPolicy) {
        self.store = store
        self.publisher = publisher
        self.policy = policy
    }

    private enum Change: Sendable {
        case subscription(StripeSubscription)
        case invoice(StripeInvoice)
    }

    public func apply(_ event: StripeEvent, logger: Logger) async throws -> Outcome {
        let change: Change
        if Self.subscriptionTypes.contains(event.type) {
            change = .subscription(try StripeSubscription(event.object))
        } else if Self.invoiceTypes.contains(event.type) {
            change = .invoice(try StripeInvoice(event.object))
        } else {
            return .ignored
        }
        let markerPath = try DocumentPath(collection: StripeEventMarker.collection, id: event.id)
        let outboxPath = try DocumentPath(collection: OutboxEntry.collection, id: event.id)
        let policy = self.policy

        let (outcome, pending) = try await store.runTransaction { transaction -> (Outcome, OutboxEntry?) in
            if try await transaction.get(markerPath) != nil {
                // Already applied; finish a publish a crash may have cut short.
                return (.duplicate, try await transaction.get(outboxPath)?.decode(OutboxEntry.self))
            }
            let customer: String
            switch change {
            case .subscription(let subscription): customer = subscription.customer
            case .invoice(let invoice): customer = invoice.customer
            }
            let indexPath = try DocumentPath(collection: "stripeCustomers", id: customer)
            let indexed = try await transaction.get(indexPath)?.fields["accountId"]
            var accountId = indexed.flatMap { if case .string(let s) = $0 { s } else { nil } } ?? customer
            if case .subscription(let subscription) = change, let declared = subscription.metadata["tollgate_account_id"] {
                accountId = declared
            }
            let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
            let current = try await transaction.get(accountPath).map { try $0.decode(Account.self) }

            let updated: Account?
            switch change {
            case .subscription(let subscription):
                updated = try Self.applying(subscription, of: event, to: current, accountId: accountId, policy: policy)
                if indexed != .string(accountId) { try transaction.set(indexPath, ["accountId": .string(accountId)]) }
            case .invoice(let invoice):
                updated = Self.applying(invoice, of: event, to: current, accountId: accountId, policy: policy)
            }
            try transaction.create(
                markerPath,
                try FieldValueEncoder().encode(
                    StripeEventMarker(type: event.type, created: event.created, livemode: event.livemode, accountId: accountId)))
            guard let updated, updated != current else { return (.stale, nil) }
            try transaction.set(accountPath, try FieldValueEncoder().encode(updated))
            guard current?.tier != updated.tier || current?.entitlements != updated.entitlements else { return (.applied, nil) }
            let entry = try OutboxEntry.entitlementsChanged(updated, cause: ("stripeEventId", event.id))
            try transaction.create(outboxPath, try FieldValueEncoder().encode(entry))
            return (.applied, entry)
        }

        if let pending { try await pending.publish(through: publisher, clearing: outboxPath, in: store, logger: logger) }
        return outcome
    }

    // MARK: - The rules, as pure functions

    /// The account after a subscription event, or nil when the event must not change it:
    /// an older event for the same subscription, or an ended subscription's event for an
    /// account that has moved on to a live one.
    static func applying(
        _ subscription: StripeSubscription, of event: StripeEvent, to current: Account?, accountId: String, policy: BillingPolicy
    ) throws -> Account? {
        if let billing = current?.billing {
            let incomingEnded = subscription.status.hasEnded
            if billing.subscriptionId != subscription.id, incomingEnded != billing.status.hasEnded {
                // A live subscription outranks an ended one, whatever the order.
                if incomingEnded { return nil }
            } else if !isNewer(event, than: (billing.lastEventCreated, billing.lastEventId, billing.status.hasEnded)) {
                return nil
            }
        }
        let (tier, entitlements) = try policy.resolve(
            status: subscription.status, priceId: subscription.priceId, metadata: subscription.metadata)
        let billing = BillingState(
            customerId: subscription.customer, subscriptionId: subscription.id, priceId: subscription.priceId,
            status: subscription.status,
            currentPeriodStart: subscription.currentPeriodStart.map(Timestamp.init(secondsSinceEpoch:)),
            currentPeriodEnd: subscription.currentPeriodEnd.map(Timestamp.init(secondsSinceEpoch:)),
            cancelAtPeriodEnd: subscription.cancelAtPeriodEnd, trialEnd: subscription.trialEnd.map(Timestamp.init(secondsSinceEpoch:)),
            lastEventCreated: event.created, lastEventId: event.id)
        // What Clerk said of the account (its owner, its closing) is kept.
        return Account(
            id: accountId, tier: tier, entitlements: entitlements, billing: billing, lastInvoice: current?.lastInvoice,
            owner: current?.owner, closed: current?.closed)
    }

    /// Stripe's `created` has one-second resolution, so ties are broken the same way in
    /// every order: an event that ends the subscription wins, then the larger event id.
    static func isNewer(_ event: StripeEvent, than last: (created: Int64, id: String, ended: Bool)) -> Bool {
        let ends = event.type == "customer.subscription.deleted"
        if event.created != last.created { return event.created > last.created }
        if ends != last.ended { return ends }
        return event.id > last.id
    }

    /// The account after an invoice event: only its invoice state changes; an account
    /// first seen through an invoice starts on Free until its subscription arrives.
    static func applying(_ invoice: StripeInvoice, of event: StripeEvent, to current: Account?, accountId: String, policy: BillingPolicy)
        -> Account?
    {
        if let last = current?.lastInvoice, (last.eventCreated, last.eventId) >= (event.created, event.id) { return nil }
        var account = current ?? Account(id: accountId, tier: .free, entitlements: policy.catalog.entitlements(for: .free))
        account.lastInvoice = InvoiceState(
            invoiceId: invoice.id, paid: event.type == "invoice.payment_succeeded", attemptCount: invoice.attemptCount,
            billingReason: invoice.billingReason, eventCreated: event.created, eventId: event.id)
        return account
    }
}

extension SubscriptionStatus {
    /// Whether the subscription is over and cannot come back.
    var hasEnded: Bool { self == .canceled || self == .incompleteExpired }
}
