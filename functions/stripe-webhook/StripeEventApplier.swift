import Foundation
import Logging
import TollgateAuth
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
        /// A newer event for the subscription was already applied, or the event is of a
        /// customer the account is no longer billed by; only the marker was written.
        case stale
        /// The event was processed before.
        case duplicate
        /// A type Tollgate does not act on, or a link that names no account.
        case ignored
        /// A Checkout `client_reference_id` Tollgate did not mint (a bare account id, a
        /// forgery) or one that had expired when the session was created: nothing is written.
        case unverified
        /// Applying the event would move billing between accounts or customers: a link for
        /// a customer already linked elsewhere, a second customer on an account whose
        /// subscription has not ended, or that customer's subscription events. Nothing is
        /// applied and no marker written; `billingConflicts/{eventId}` records it for a
        /// person, and the event applies when Stripe resends it after they resolved it.
        case conflict
    }

    public static let subscriptionTypes: Set<String> = [
        "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
    ]
    public static let invoiceTypes: Set<String> = ["invoice.payment_succeeded", "invoice.payment_failed"]
    /// Events that link a Stripe customer to the account it bills (see ``linking(_:to:event:policy:in:paths:)``).
    public static let linkTypes: Set<String> = ["checkout.session.completed", "customer.created", "customer.updated"]

    let store: any DocumentStore
    let publisher: any Publisher
    let policy: BillingPolicy
    let references: CheckoutReferenceSigner

    public init(store: any DocumentStore, publisher: any Publisher, policy: BillingPolicy, references: CheckoutReferenceSigner) {
        self.store = store
        self.publisher = publisher
        self.policy = policy
        self.references = references
    }

    private enum Change: Sendable {
        case subscription(StripeSubscription, declaredAccountId: String?)
        case invoice(StripeInvoice)
        case link(StripeCustomerLink, accountId: String)
    }

    /// The documents one event's transaction writes besides the account.
    struct EventPaths: Sendable {
        var marker: DocumentPath
        var outbox: DocumentPath
        var conflict: DocumentPath

        init(_ event: StripeEvent) throws {
            marker = try DocumentPath(collection: StripeEventMarker.collection, id: event.id)
            outbox = try DocumentPath(collection: OutboxEntry.collection, id: event.id)
            conflict = try DocumentPath(collection: BillingConflict.collection, id: event.id)
        }
    }

    public func apply(_ event: StripeEvent, logger: Logger) async throws -> Outcome {
        let change: Change
        if Self.subscriptionTypes.contains(event.type) {
            let subscription = try StripeSubscription(event.object)
            let declared = subscription.metadata["tollgate_account_id"]
            if let declared, !InputBounds.isIdentifier(declared) {
                throw TollgateError(.invalidArgument, "\(subscription.id): metadata tollgate_account_id is not 1–128 of A–Z a–z 0–9 _ -")
            }
            change = .subscription(subscription, declaredAccountId: declared)
        } else if Self.invoiceTypes.contains(event.type) {
            change = .invoice(try StripeInvoice(event.object))
        } else if Self.linkTypes.contains(event.type) {
            let link = try StripeCustomerLink(event.object)
            switch linkedAccount(link, event: event) {
            case .success(let accountId?): change = .link(link, accountId: accountId)
            case .success(nil): return .ignored
            case .failure(let refusal):
                logger.warning(
                    "client_reference_id names no account: Tollgate did not mint it, or it had expired; nothing was linked",
                    metadata: ["customer": "\(link.customer)", "eventId": "\(event.id)", "reason": "\(refusal.rawValue)"])
                return .unverified
            }
        } else {
            return .ignored
        }
        let paths = try EventPaths(event)
        let policy = self.policy

        let (outcome, pending, conflict) = try await store.runTransaction {
            transaction -> (Outcome, OutboxEntry?, BillingConflict?) in
            if try await transaction.get(paths.marker) != nil {
                // Already applied; finish a publish a crash may have cut short.
                return (.duplicate, try await transaction.get(paths.outbox)?.decode(OutboxEntry.self), nil)
            }
            let recordedConflict = try await transaction.get(paths.conflict) != nil
            let customer: String
            switch change {
            case .subscription(let subscription, _): customer = subscription.customer
            case .invoice(let invoice): customer = invoice.customer
            case .link(let link, let accountId):
                return try await Self.linking(
                    link.customer, to: accountId, event: event, policy: policy, in: transaction, paths: paths,
                    recordedConflict: recordedConflict)
            }
            let indexPath = try DocumentPath(collection: CustomerLink.collection, id: customer)
            let index = try await transaction.get(indexPath)?.decode(CustomerLink.self)
            var accountId = index?.accountId ?? customer
            var link = index
            if case .subscription(_, let declared) = change {
                if let declared {
                    // The subscription's metadata links as Checkout's does, by the same rules.
                    if let index, index.linked == true, index.accountId != declared {
                        let found = BillingConflict(
                            event, customer: customer, accountId: declared, reason: .customerLinkedElsewhere,
                            linkedAccountId: index.accountId)
                        return try Self.refusing(found, recorded: recordedConflict, in: transaction, paths: paths)
                    }
                    accountId = declared
                    link = CustomerLink(accountId: declared, linked: true)
                } else if index == nil {
                    // A stand-in: the link that arrives later finds what it holds here.
                    link = CustomerLink(accountId: customer, linked: nil)
                }
            }
            let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
            let current = try await transaction.get(accountPath).map { try $0.decode(Account.self) }
            // Only the account's billing customer changes it while its subscription lives.
            if let billing = current?.billing, billing.customerId != customer {
                if case .subscription = change, !billing.status.hasEnded {
                    let found = BillingConflict(
                        event, customer: customer, accountId: accountId, reason: .accountBilledByAnotherCustomer,
                        billingCustomerId: billing.customerId)
                    return try Self.refusing(found, recorded: recordedConflict, in: transaction, paths: paths)
                }
                if case .invoice = change {
                    try Self.finish(event, accountId: accountId, recordedConflict: recordedConflict, in: transaction, paths: paths)
                    return (.stale, nil, nil)
                }
            }

            let updated: Account?
            switch change {
            case .subscription(let subscription, _):
                updated = try Self.applying(subscription, of: event, to: current, accountId: accountId, policy: policy)
                if let link, link != index { try transaction.set(indexPath, try FieldValueEncoder().encode(link)) }
            case .invoice(let invoice):
                updated = Self.applying(invoice, of: event, to: current, accountId: accountId, policy: policy)
            case .link: return (.ignored, nil, nil)  // handled above
            }
            try Self.finish(event, accountId: accountId, recordedConflict: recordedConflict, in: transaction, paths: paths)
            guard let updated, updated != current else { return (.stale, nil, nil) }
            try transaction.set(accountPath, try FieldValueEncoder().encode(updated))
            guard current?.tier != updated.tier || current?.entitlements != updated.entitlements else { return (.applied, nil, nil) }
            let entry = try OutboxEntry.entitlementsChanged(updated, cause: ("stripeEventId", event.id))
            try transaction.create(paths.outbox, try FieldValueEncoder().encode(entry))
            return (.applied, entry, nil)
        }

        if let conflict {
            logger.warning(
                "Stripe event refused: it would move billing between accounts or customers; recorded in billingConflicts for a person",
                metadata: [
                    "eventId": "\(event.id)", "customer": "\(conflict.customer)", "accountId": "\(conflict.accountId)",
                    "reason": "\(conflict.reason.rawValue)",
                ])
        }
        if let pending { try await pending.publish(through: publisher, clearing: paths.outbox, in: store, logger: logger) }
        return outcome
    }

    /// The account a link event names: its server-set metadata `tollgate_account_id` first,
    /// else a verified Checkout reference; nil when it names none.
    func linkedAccount(_ link: StripeCustomerLink, event: StripeEvent) -> Result<String?, CheckoutReference.Refusal> {
        if let declared = link.declaredAccountId { return .success(declared) }
        guard let reference = link.clientReference else { return .success(nil) }
        let created = Timestamp(secondsSinceEpoch: link.sessionCreated ?? event.created)
        return references.verify(reference, at: created).map { .some($0.accountId) }
    }

    /// The event's marker, written with its effect; a conflict it once met is resolved.
    private static func finish(
        _ event: StripeEvent, accountId: String?, recordedConflict: Bool, in transaction: any DocumentTransaction, paths: EventPaths
    ) throws {
        try transaction.create(
            paths.marker,
            try FieldValueEncoder().encode(
                StripeEventMarker(type: event.type, created: event.created, livemode: event.livemode, accountId: accountId)))
        if recordedConflict { try transaction.delete(paths.conflict) }
    }

    /// Nothing applied and no marker: the conflict is recorded once (the first arrival's).
    private static func refusing(
        _ conflict: BillingConflict, recorded: Bool, in transaction: any DocumentTransaction, paths: EventPaths
    ) throws -> (Outcome, OutboxEntry?, BillingConflict?) {
        if !recorded { try transaction.create(paths.conflict, try FieldValueEncoder().encode(conflict)) }
        return (.conflict, nil, conflict)
    }

    /// Links `customer` to `accountId` (`stripeCustomers/{customer}`), in any order with the
    /// customer's subscription events. Events that arrived before the link were applied to a
    /// stand-in account named after the customer (as for a customer never linked); the link
    /// moves their billing state, invoice state and markers to the linked account and deletes
    /// the stand-in, so the state ends as if the link had come first. A conflict, refused
    /// and recorded: a customer already linked to another account, or an account whose
    /// live subscription is another customer's.
    static func linking(
        _ customer: String, to accountId: String, event: StripeEvent, policy: BillingPolicy, in transaction: any DocumentTransaction,
        paths: EventPaths, recordedConflict: Bool
    ) async throws -> (Outcome, OutboxEntry?, BillingConflict?) {
        let indexPath = try DocumentPath(collection: CustomerLink.collection, id: customer)
        let index = try await transaction.get(indexPath)?.decode(CustomerLink.self)
        if let index, index.linked == true {
            guard index.accountId == accountId else {
                let found = BillingConflict(
                    event, customer: customer, accountId: accountId, reason: .customerLinkedElsewhere, linkedAccountId: index.accountId)
                return try refusing(found, recorded: recordedConflict, in: transaction, paths: paths)
            }
            try finish(event, accountId: accountId, recordedConflict: recordedConflict, in: transaction, paths: paths)
            return (.stale, nil, nil)
        }
        // A stand-in holds what arrived before the link, unless Clerk made it someone's.
        let standInId = index.map(\.accountId).flatMap { $0 == accountId ? nil : $0 }
        let standInPath = try standInId.map { try DocumentPath(collection: Account.collection, id: $0) }
        let standIn = try await standInPath.asyncMap { try await transaction.get($0)?.decode(Account.self) }?.flatMap { $0 }
        let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
        let current = try await transaction.get(accountPath)?.decode(Account.self)
        if let billing = current?.billing, billing.customerId != customer, !billing.status.hasEnded {
            let found = BillingConflict(
                event, customer: customer, accountId: accountId, reason: .accountBilledByAnotherCustomer,
                billingCustomerId: billing.customerId)
            return try refusing(found, recorded: recordedConflict, in: transaction, paths: paths)
        }
        let movedMarkers =
            try await standInId.asyncMap {
                try await transaction.query(
                    DocumentQuery(collection: StripeEventMarker.collection).filter("accountId", .equal, .string($0)))
            } ?? []
        // Reads are done; the writes follow.
        try transaction.set(indexPath, try FieldValueEncoder().encode(CustomerLink(accountId: accountId, linked: true)))
        try finish(event, accountId: accountId, recordedConflict: recordedConflict, in: transaction, paths: paths)
        guard let standIn, let standInPath, standIn.owner == nil else { return (.applied, nil, nil) }
        let updated = Self.merging(standIn, into: current, accountId: accountId, policy: policy)
        try transaction.delete(standInPath)
        for moved in movedMarkers {
            var record = try moved.decode(StripeEventMarker.self)
            record.accountId = accountId
            try transaction.set(moved.path, try FieldValueEncoder().encode(record))
        }
        guard updated != current else { return (.applied, nil, nil) }
        try transaction.set(accountPath, try FieldValueEncoder().encode(updated))
        guard current?.tier != updated.tier || current?.entitlements != updated.entitlements else { return (.applied, nil, nil) }
        let entry = try OutboxEntry.entitlementsChanged(updated, cause: ("stripeEventId", event.id))
        try transaction.create(paths.outbox, try FieldValueEncoder().encode(entry))
        return (.applied, entry, nil)
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

/// `billingConflicts/{eventId}`: a Stripe event refused because it would move billing
/// between accounts or customers, kept for a person to decide. Applying the event later
/// (Stripe's resend, after the person changed `stripeCustomers/{customer}` or the old
/// subscription ended) removes it.
struct BillingConflict: Codable, Sendable, Hashable {
    static let collection = "billingConflicts"

    enum Reason: String, Codable, Sendable {
        /// The customer is linked to another account than the one the event names.
        case customerLinkedElsewhere = "customer_linked_elsewhere"
        /// The account's subscription, not ended, belongs to another customer.
        case accountBilledByAnotherCustomer = "account_billed_by_another_customer"
    }

    var eventType: String
    var eventCreated: Int64
    var customer: String
    /// The account the event would have changed.
    var accountId: String
    var reason: Reason
    /// The account the customer is linked to, for `customerLinkedElsewhere`.
    var linkedAccountId: String?
    /// The customer whose subscription bills the account, for `accountBilledByAnotherCustomer`.
    var billingCustomerId: String?

    init(
        _ event: StripeEvent, customer: String, accountId: String, reason: Reason, linkedAccountId: String? = nil,
        billingCustomerId: String? = nil
    ) {
        eventType = event.type
        eventCreated = event.created
        self.customer = customer
        self.accountId = accountId
        self.reason = reason
        self.linkedAccountId = linkedAccountId
        self.billingCustomerId = billingCustomerId
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
