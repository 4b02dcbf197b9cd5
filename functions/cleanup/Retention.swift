import TollgateModel
import TollgateRuntime

/// How long each kind of record is kept. Settings are in days (`TOLLGATE_RETENTION_*`).
public struct Retention: Sendable, Hashable {
    /// Ledger entries, once their day is exported and verified.
    public var ledgerDays: Int
    /// Export objects (the manifests stay: they are the chain).
    public var exportDays: Int
    public var deadLetterDays: Int
    /// Revoked keys are kept this long after revocation, expired ones after expiry.
    public var keyDays: Int
    /// Stripe retries a webhook for up to 3 days; a marker must outlive that, plus a margin.
    public var stripeEventDays: Int
    /// Svix retries a message for about 28 hours; its marker outlives that. A later manual
    /// replay from Svix's dashboard is still harmless: each record's event stamp refuses it.
    public var clerkEventDays: Int

    public init(
        ledgerDays: Int = 400, exportDays: Int = 2_555, deadLetterDays: Int = 30, keyDays: Int = 90, stripeEventDays: Int = 30,
        clerkEventDays: Int = 30
    ) {
        self.ledgerDays = ledgerDays
        self.exportDays = exportDays
        self.deadLetterDays = deadLetterDays
        self.keyDays = keyDays
        self.stripeEventDays = stripeEventDays
        self.clerkEventDays = clerkEventDays
    }

    /// Stripe's retry window: markers younger than this must never go.
    public static let stripeRetryWindowDays = 3
    /// Svix's retry schedule, rounded up to whole days.
    public static let svixRetryWindowDays = 2

    /// - Throws: ``ConfigurationError`` for a value out of range, or markers kept less
    ///   than Stripe's retry window plus a day.
    public static func fromEnvironment(_ environment: Environment) throws -> Retention {
        let retention = Retention(
            ledgerDays: try environment.integer("TOLLGATE_RETENTION_LEDGER_DAYS", default: 400, range: 1...36_500),
            exportDays: try environment.integer("TOLLGATE_RETENTION_EXPORT_DAYS", default: 2_555, range: 1...36_500),
            deadLetterDays: try environment.integer("TOLLGATE_RETENTION_DEAD_LETTER_DAYS", default: 30, range: 1...36_500),
            keyDays: try environment.integer("TOLLGATE_RETENTION_KEY_DAYS", default: 90, range: 0...36_500),
            stripeEventDays: try environment.integer(
                "TOLLGATE_RETENTION_STRIPE_EVENT_DAYS", default: 30, range: (stripeRetryWindowDays + 1)...36_500),
            clerkEventDays: try environment.integer(
                "TOLLGATE_RETENTION_CLERK_EVENT_DAYS", default: 30, range: (svixRetryWindowDays + 1)...36_500))
        return retention
    }
}
