/// How long the work under way may still take: set by the runtime for each request from
/// what its caller waits (a gateway, Stripe, Svix, Pub/Sub), read by every outbound call,
/// which shortens its own timeout to what is left and retries only within it. A hung
/// server then fails the call with `DEADLINE_EXCEEDED` (answered 503, for the sender to
/// retry) while the caller still listens, instead of holding the request for a minute.
public enum Deadline {
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// What is left of the current deadline; nil when none is set.
    public static var remaining: Duration? { current.map { $0 - .now } }

    /// Runs `body` with at most `budget` left (never more than an enclosing deadline allows).
    public static func run<T>(within budget: Duration, _ body: () async throws -> T) async rethrows -> T {
        let end = ContinuousClock.now + budget
        return try await $current.withValue(current.map { min($0, end) } ?? end, operation: body)
    }
}
