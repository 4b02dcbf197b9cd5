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
        /// A type Tollgate does not act on, or a link that names no account.
        case ignored
        /// A link naming another account than the customer is already linked to: nothing
        /// but the marker is written, and a person decides (the log line says which).
        case conflict
    }

    public static let subscriptionTypes: Set<String> = [
        "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
    ]
    public static let invoiceTypes: Set<String> = ["invoice.payment_succeeded", "invoice.payment_failed"]
    /// Events that link a Stripe customer to the account it bills (see ``linking(_:event:in:)``).
    public static let linkTypes: Set<String> = ["checkout.session.completed", "customer.created", "customer.updated"]

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
        case link(StripeCustomerLink, accountId: String)
    }

    public func apply(_ event: StripeEvent, logger: Logger) async throws -> Outcome {
        let change: Change
        if Self.subscriptionTypes.contains(event.type) {
            change = .subscription(try StripeSubscription(event.object))
        } else if Self.invoiceTypes.contains(event.type) {
            change = .invoice(try StripeInvoice(event.object))
        } else if Self.linkTypes.contains(event.type) {
            let link = try StripeCustomerLink(event.object)
            guard let accountId = link.accountId else { return .ignored }
            change = .link(link, accountId: accountId)
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
            case .link(let link, let accountId):
                let (outcome, entry) = try await Self.linking(
                    link.customer, to: accountId, event: event, policy: policy, in: transaction, markerPath: markerPath,
                    outboxPath: outboxPath)
                if outcome == .conflict {
                    logger.warning(
                        "Stripe customer is already linked to another account; the link was not changed",
                        metadata: ["customer": "\(link.customer)", "accountId": "\(accountId)", "eventId": "\(event.id)"])
                }
                return (outcome, entry)
            }
            let indexPath = try DocumentPath(collection: CustomerLink.collection, id: customer)
            let index = try await transaction.get(indexPath)?.decode(CustomerLink.self)
            var accountId = index?.accountId ?? customer
            var link = index
            if case .subscription(let subscription) = change {
                if let declared = subscription.metadata["tollgate_account_id"] { accountId = declared }
                // The subscription's metadata is a link as explicit as Checkout's.
                let declared = subscription.metadata["tollgate_account_id"] != nil
                link = CustomerLink(accountId: accountId, linked: declared || index?.linked == true ? true : nil)
            }
            let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
            let current = try await transaction.get(accountPath).map { try $0.decode(Account.self) }

            let updated: Account?
            switch change {
            case .subscription(let subscription):
                updated = try Self.applying(subscription, of: event, to: current, accountId: accountId, policy: policy)
                if let link, link != index { try transaction.set(indexPath, try FieldValueEncoder().encode(link)) }
            case .invoice(let invoice):
                updated = Self.applying(invoice, of: event, to: current, accountId: accountId, policy: policy)
            case .link: return (.ignored, nil)  // handled above
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

    /// Links `customer` to `accountId` (`stripeCustomers/{customer}`), in any order with the
    /// customer's subscription events. Events that arrived before the link were applied to a
    /// stand-in account named after the customer (as for a customer never linked); the link
    /// moves their billing state, invoice state and markers to the linked account and deletes
    /// the stand-in, so the state ends as if the link had come first. A customer already
    /// linked to another account keeps its link (outcome `conflict`).
    static func linking(
        _ customer: String, to accountId: String, event: StripeEvent, policy: BillingPolicy, in transaction: any DocumentTransaction,
        markerPath: DocumentPath, outboxPath: DocumentPath
    ) async throws -> (Outcome, OutboxEntry?) {
        let indexPath = try DocumentPath(collection: CustomerLink.collection, id: customer)
        let index = try await transaction.get(indexPath)?.decode(CustomerLink.self)
        let marker = { (account: String?) in
            try transaction.create(
                markerPath,
                try FieldValueEncoder().encode(
                    StripeEventMarker(type: event.type, created: event.created, livemode: event.livemode, accountId: account)))
        }
        if let index, index.linked == true {
            try marker(index.accountId)
            return (index.accountId == accountId ? .stale : .conflict, nil)
        }
        // A stand-in holds what arrived before the link, unless Clerk made it someone's.
        let standInId = index.map(\.accountId).flatMap { $0 == accountId ? nil : $0 }
        let standInPath = try standInId.map { try DocumentPath(collection: Account.collection, id: $0) }
        let standIn = try await standInPath.asyncMap { try await transaction.get($0)?.decode(Account.self) }?.flatMap { $0 }
        let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
        let current = try await transaction.get(accountPath)?.decode(Account.self)
        let movedMarkers =
            try await standInId.asyncMap {
                try await transaction.query(
                    DocumentQuery(collection: StripeEventMarker.collection).filter("accountId", .equal, .string($0)))
            } ?? []
        // Reads are done; the writes follow.
        try transaction.set(indexPath, try FieldValueEncoder().encode(CustomerLink(accountId: accountId, linked: true)))
        try marker(accountId)
        guard let standIn, let standInPath, standIn.owner == nil else { return (.applied, nil) }
        let updated = Self.merging(standIn, into: current, accountId: accountId, policy: policy)
        try transaction.delete(standInPath)
        for moved in movedMarkers {
            var record = try moved.decode(StripeEventMarker.self)
            record.accountId = accountId
            try transaction.set(moved.path, try FieldValueEncoder().encode(record))
        }
        guard updated != current else { return (.applied, nil) }
        try transaction.set(accountPath, try FieldValueEncoder().encode(updated))
        guard current?.tier != updated.tier || current?.entitlements != updated.entitlements else { return (.applied, nil) }
        let entry = try OutboxEntry.entitlementsChanged(updated, cause: ("stripeEventId", event.id))
        try transaction.create(outboxPath, try FieldValueEncoder().encode(entry))
        return (.applied, entry)
    }

    /// The linked account after taking in a stand-in's billing and invoice state, each
    /// where it outranks the account's own by the rules events are applied by.
    static func merging(_ standIn: Account, into current: Account?, accountId: String, policy: BillingPolicy) -> Account {
        var account = current ?? Account(id: accountId, tier: .free, entitlements: policy.catalog.entitlements(for: .free))
        if let billing = standIn.billing, account.billing.map({ outranks(billing, $0) }) ?? true {
            account.billing = billing
            account.tier = standIn.tier
            account.entitlements = standIn.entitlements
        }
        if let invoice = standIn.lastInvoice,
            account.lastInvoice.map({ ($0.eventCreated, $0.eventId) < (invoice.eventCreated, invoice.eventId) }) ?? true
        {
            account.lastInvoice = invoice
        }
        return account
    }

    /// Whether billing state `a` wins over `b` as the later of their events would.
    static func outranks(_ a: BillingState, _ b: BillingState) -> Bool {
        if a.subscriptionId != b.subscriptionId, a.status.hasEnded != b.status.hasEnded { return !a.status.hasEnded }
        if a.lastEventCreated != b.lastEventCreated { return a.lastEventCreated > b.lastEventCreated }
        if a.status.hasEnded != b.status.hasEnded { return a.status.hasEnded }
        return a.lastEventId > b.lastEventId
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

/// `stripeCustomers/{customerId}`: the account a Stripe customer bills. `linked` marks a
/// link someone made on purpose (Checkout's `client_reference_id`, a `tollgate_account_id`
/// in metadata); without it the account is a stand-in named after the customer.
struct CustomerLink: Codable, Sendable, Hashable {
    static let collection = "stripeCustomers"
    var accountId: String
    var linked: Bool?
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
