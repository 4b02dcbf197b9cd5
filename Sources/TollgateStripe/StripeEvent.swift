import Foundation
import TollgateModel

/// A Stripe event as posted to a webhook endpoint.
/// <https://docs.stripe.com/api/events/object>
public struct StripeEvent: Sendable, Hashable {
    public var id: String
    public var type: String
    public var created: Int64
    public var livemode: Bool
    public var apiVersion: String?
    /// `data.object`, kept as JSON: its shape depends on `type` and `api_version`.
    public var object: JSONValue
    public var previousAttributes: JSONValue?

    /// Decodes the event envelope.
    /// - Throws: `INVALID_ARGUMENT` naming what is missing or malformed.
    public init(json body: Data) throws {
        let root = try JSONValue.parse(body)
        guard root["object"]?.stringValue == "event" else {
            throw TollgateError(.invalidArgument, "not a Stripe event: \"object\" is not \"event\"")
        }
        guard let id = root["id"]?.stringValue, id.hasPrefix("evt_") else {
            throw TollgateError(.invalidArgument, "Stripe event without an evt_ id")
        }
        guard let type = root["type"]?.stringValue, !type.isEmpty else {
            throw TollgateError(.invalidArgument, "Stripe event \(id) has no type")
        }
        guard let created = root["created"]?.integerValue else {
            throw TollgateError(.invalidArgument, "Stripe event \(id) has no created time")
        }
        guard Timestamp(unixSeconds: created) != nil else {
            throw TollgateError(.invalidArgument, "Stripe event \(id) has a created time outside years 1 to 9999")
        }
        guard let object = root["data"]?["object"], object.objectValue != nil else {
            throw TollgateError(.invalidArgument, "Stripe event \(id) has no data.object")
        }
        self.id = id
        self.type = type
        self.created = created
        self.livemode = root["livemode"]?.boolValue ?? false
        self.apiVersion = root["api_version"]?.stringValue
        self.object = object
        self.previousAttributes = root["data"]?["previous_attributes"]
    }
}

/// The parts of a Stripe subscription Tollgate uses, read from either generation of the
/// API: since 2025-03-31 the period lives on `items.data[]`; before, on the
/// subscription; the oldest versions name the price `plan`.
/// <https://docs.stripe.com/api/subscriptions/object>
public struct StripeSubscription: Sendable, Hashable {
    public var id: String
    public var customer: String
    public var status: SubscriptionStatus
    public var priceId: String?
    public var currentPeriodStart: Int64?
    public var currentPeriodEnd: Int64?
    public var cancelAtPeriodEnd: Bool
    public var trialEnd: Int64?
    public var metadata: [String: String]

    /// - Throws: `INVALID_ARGUMENT` when the object is not a subscription or lacks its id,
    ///   customer or a known status.
    public init(_ object: JSONValue) throws {
        guard object["object"]?.stringValue == "subscription", let id = object["id"]?.stringValue else {
            throw TollgateError(.invalidArgument, "data.object is not a subscription")
        }
        guard let customer = expandableID(object["customer"]) else {
            throw TollgateError(.invalidArgument, "subscription \(id) has no customer")
        }
        guard let statusText = object["status"]?.stringValue, let status = SubscriptionStatus(rawValue: statusText) else {
            throw TollgateError(.invalidArgument, "subscription \(id) has an unknown status")
        }
        self.id = id
        self.customer = customer
        self.status = status
        let item = object["items"]?["data"]?.arrayValue?.first
        priceId = item?["price"]?["id"]?.stringValue ?? item?["plan"]?["id"]?.stringValue ?? object["plan"]?["id"]?.stringValue
        currentPeriodStart = try unixTime(item?["current_period_start"] ?? object["current_period_start"], "current_period_start", of: id)
        currentPeriodEnd = try unixTime(item?["current_period_end"] ?? object["current_period_end"], "current_period_end", of: id)
        cancelAtPeriodEnd = object["cancel_at_period_end"]?.boolValue ?? false
        trialEnd = try unixTime(object["trial_end"], "trial_end", of: id)
        metadata = (object["metadata"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }
}

/// The parts of a Stripe invoice Tollgate uses, from either generation: since
/// 2025-03-31 the subscription is under `parent.subscription_details`; before, top-level.
/// <https://docs.stripe.com/api/invoices/object>
public struct StripeInvoice: Sendable, Hashable {
    public var id: String
    public var customer: String
    public var subscription: String?
    public var status: String?
    public var billingReason: String?
    public var attemptCount: Int64

    public init(_ object: JSONValue) throws {
        guard object["object"]?.stringValue == "invoice", let id = object["id"]?.stringValue else {
            throw TollgateError(.invalidArgument, "data.object is not an invoice")
        }
        guard let customer = expandableID(object["customer"]) else {
            throw TollgateError(.invalidArgument, "invoice \(id) has no customer")
        }
        self.id = id
        self.customer = customer
        subscription = expandableID(object["parent"]?["subscription_details"]?["subscription"]) ?? expandableID(object["subscription"])
        status = object["status"]?.stringValue
        billingReason = object["billing_reason"]?.stringValue
        // Absent or null is none yet; anything else must be a whole count, never read as 0.
        if let attempts = object["attempt_count"], attempts != .null {
            guard let count = attempts.integerValue, InputBounds.invoiceAttempts.contains(count) else {
                throw TollgateError(.invalidArgument, "invoice \(id) has an attempt_count that is not a whole number from 0 to 10000")
            }
            attemptCount = count
        } else {
            attemptCount = 0
        }
    }
}

/// A Unix time field: absent or null is nil; a number outside years 1 to 9999 (or a
/// fraction, or text) is `INVALID_ARGUMENT`, never a time that later arithmetic overflows.
private func unixTime(_ value: JSONValue?, _ field: String, of id: String) throws -> Int64? {
    guard let value, value != .null else { return nil }
    guard let seconds = value.integerValue, Timestamp(unixSeconds: seconds) != nil else {
        throw TollgateError(.invalidArgument, "\(id): \(field) is not a Unix time within years 1 to 9999")
    }
    return seconds
}

/// An expandable field: an id string, or the expanded object with an `id`.
private func expandableID(_ value: JSONValue?) -> String? {
    value?.stringValue ?? value?["id"]?.stringValue
}

/// What may link a Stripe customer to a Tollgate account: a completed Checkout Session's
/// `client_reference_id` (chosen by whoever opened Checkout: it names an account only as
/// a reference Tollgate minted and stripe-webhook verifies) and its metadata's
/// `tollgate_account_id` (set by the server that created the session or Payment Link), or
/// a customer's metadata `tollgate_account_id`.
/// <https://docs.stripe.com/api/checkout/sessions/object>
public struct StripeCustomerLink: Sendable, Hashable {
    public var customer: String
    /// Metadata `tollgate_account_id`: only a holder of the Stripe secret key sets it.
    public var declaredAccountId: String?
    /// A Checkout Session's `client_reference_id`, as the client sent it: unverified.
    public var clientReference: String?
    /// When the Checkout Session was created (Unix seconds): a reference must have been good then.
    public var sessionCreated: Int64?
    public var subscription: String?

    /// - Throws: `INVALID_ARGUMENT` for an object of another kind, or a declared account id
    ///   that is not 1–128 of `A–Z a–z 0–9 _ -`.
    public init(_ object: JSONValue) throws {
        declaredAccountId = object["metadata"]?["tollgate_account_id"]?.stringValue
        switch object["object"]?.stringValue {
        case "checkout.session":
            let id = object["id"]?.stringValue ?? "checkout session"
            guard let customer = expandableID(object["customer"]) else {
                throw TollgateError(.invalidArgument, "\(id) has no customer to link")
            }
            self.customer = customer
            clientReference = object["client_reference_id"]?.stringValue
            sessionCreated = try unixTime(object["created"], "created", of: id)
            subscription = expandableID(object["subscription"])
        case "customer":
            guard let id = object["id"]?.stringValue else { throw TollgateError(.invalidArgument, "customer without an id") }
            customer = id
            clientReference = nil
            sessionCreated = nil
            subscription = nil
        default:
            throw TollgateError(.invalidArgument, "data.object is neither a checkout session nor a customer")
        }
        if let declaredAccountId, !InputBounds.isIdentifier(declaredAccountId) {
            throw TollgateError(.invalidArgument, "\(customer): metadata tollgate_account_id is not 1–128 of A–Z a–z 0–9 _ -")
        }
    }
}
