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

    static func days(_ name: String, from least: Int, default days: Int, _ what: String) -> Setting {
        Setting(name, .integer(least...36_500), default: String(days), summary: what)
    }
    public static let ledgerDaysSetting = days(
        "TOLLGATE_RETENTION_LEDGER_DAYS", from: 1, default: 400, "days a ledger day is kept once exported and verified")
    public static let exportDaysSetting = days(
        "TOLLGATE_RETENTION_EXPORT_DAYS", from: 1, default: 2_555, "days export objects are kept (manifests and signatures stay)")
    public static let deadLetterDaysSetting = days(
        "TOLLGATE_RETENTION_DEAD_LETTER_DAYS", from: 1, default: 30, "days a dead letter is kept")
    public static let keyDaysSetting = days(
        "TOLLGATE_RETENTION_KEY_DAYS", from: 0, default: 90, "days an expired or revoked API key is kept")
    public static let stripeEventDaysSetting = days(
        "TOLLGATE_RETENTION_STRIPE_EVENT_DAYS", from: stripeRetryWindowDays + 1, default: 30,
        "days a Stripe event's marker is kept (at least Stripe's 3-day retry window and a day)")
    public static let clerkEventDaysSetting = days(
        "TOLLGATE_RETENTION_CLERK_EVENT_DAYS", from: svixRetryWindowDays + 1, default: 30,
        "days a Clerk event's marker is kept (at least Svix's retries and a day)")
    public static let settings = [
        ledgerDaysSetting, exportDaysSetting, deadLetterDaysSetting, keyDaysSetting, stripeEventDaysSetting, clerkEventDaysSetting,
    ]

    /// - Throws: ``ConfigurationError`` for a value out of range, or markers kept less
    ///   than Stripe's retry window plus a day.
    public static func fromEnvironment(_ environment: Environment) throws -> Retention {
        Retention(
            ledgerDays: try environment.integer(ledgerDaysSetting), exportDays: try environment.integer(exportDaysSetting),
            deadLetterDays: try environment.integer(deadLetterDaysSetting), keyDays: try environment.integer(keyDaysSetting),
            stripeEventDays: try environment.integer(stripeEventDaysSetting),
            clerkEventDays: try environment.integer(clerkEventDaysSetting))
    }
}
