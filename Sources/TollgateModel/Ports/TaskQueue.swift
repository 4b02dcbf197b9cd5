/// Enqueues HTTP tasks, with Cloud Tasks' semantics: a named task is created once; the
/// same name again is refused with `ALREADY_EXISTS` (for about an hour after it ran or
/// was deleted, in the real service), so a deterministic name makes enqueueing idempotent.
public protocol TaskQueue: Sendable {
    /// - Throws: `ALREADY_EXISTS` for a name already used, `INVALID_ARGUMENT` for a bad
    ///   name or a body over 1 MB (the HTTP target's limit is 100 KB for the task itself;
    ///   we keep Cloud Tasks' 1 MB request limit).
    func enqueue(_ task: HTTPTask, queue: String) async throws
}

/// A task for an HTTP target.
public struct HTTPTask: Sendable, Hashable {
    /// The task id (the last segment of `projects/P/locations/L/queues/Q/tasks/ID`).
    public var name: String?
    public var url: String
    public var body: [UInt8]
    public var headers: [String: String]
    public var scheduleTime: Timestamp?

    public init(name: String?, url: String, body: [UInt8], headers: [String: String] = [:], scheduleTime: Timestamp? = nil) {
        self.name = name
        self.url = url
        self.body = body
        self.headers = headers
        self.scheduleTime = scheduleTime
    }

    /// Cloud Tasks' rules for task ids: letters, digits, hyphens and underscores, at most
    /// 500 characters.
    public func validate() throws {
        if let name {
            guard !name.isEmpty, name.count <= 500,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else { throw TollgateError(.invalidArgument, "invalid task name '\(name)'") }
        }
        guard body.count <= 1_048_576 else { throw TollgateError(.invalidArgument, "task body over 1 MB") }
    }
}

/// A queue's RateLimits: how many tasks it starts per second and how many may be
/// running at once (Cloud Tasks' defaults are 500 and 1,000).
public struct TaskRateLimits: Sendable, Hashable {
    public var maxDispatchesPerSecond: Double
    public var maxConcurrentDispatches: Int

    public init(maxDispatchesPerSecond: Double = 500, maxConcurrentDispatches: Int = 1_000) {
        self.maxDispatchesPerSecond = maxDispatchesPerSecond
        self.maxConcurrentDispatches = maxConcurrentDispatches
    }
}

/// A queue's RetryConfig, with Cloud Tasks' backoff: the interval starts at `minBackoff`,
/// doubles `maxDoublings` times, then grows by that last doubled step, capped at
/// `maxBackoff` (10 s / 300 s / 3 gives 10, 20, 40, 80, 160, 240, 300, 300 …).
public struct TaskRetryConfig: Sendable, Hashable {
    /// Attempts in all, the first included; -1 for unlimited.
    public var maxAttempts: Int
    public var minBackoffSeconds: Int64
    public var maxBackoffSeconds: Int64
    public var maxDoublings: Int
    /// How long after the first attempt retries may go on; 0 for no limit.
    public var maxRetryDurationSeconds: Int64
    /// How long the queue waits for an answer before counting the attempt failed
    /// (Cloud Tasks' default is 10 minutes; 15 s to 30 min).
    public var dispatchDeadlineSeconds: Int64

    public init(
        maxAttempts: Int, minBackoffSeconds: Int64 = 10, maxBackoffSeconds: Int64 = 300, maxDoublings: Int = 3,
        maxRetryDurationSeconds: Int64 = 0, dispatchDeadlineSeconds: Int64 = 600
    ) {
        self.maxAttempts = maxAttempts
        self.minBackoffSeconds = minBackoffSeconds
        self.maxBackoffSeconds = maxBackoffSeconds
        self.maxDoublings = maxDoublings
        self.maxRetryDurationSeconds = maxRetryDurationSeconds
        self.dispatchDeadlineSeconds = dispatchDeadlineSeconds
    }

    /// Seconds before retry number `retry` (1 for the first retry).
    public func backoff(retry: Int) -> Int64 {
        let doublings = min(max(retry - 1, 0), maxDoublings)
        let doubled = minBackoffSeconds << Int64(doublings)
        let linear = retry - 1 > maxDoublings ? Int64(retry - 1 - maxDoublings) * doubled : 0
        return min(doubled + linear, maxBackoffSeconds)
    }

    /// Whether attempt number `attempt` (1 for the first) may be followed by another.
    public func allowsAnother(after attempt: Int) -> Bool { maxAttempts < 0 || attempt < maxAttempts }

    /// When the next attempt runs after attempt number `attempt` answered `status` at
    /// `now`, or nil when the task is done or out of retries. Only 2xx completes a task;
    /// 429 and 503 honour `Retry-After`; both `maxAttempts` and `maxRetryDuration`
    /// (counted from the first attempt) must allow a retry.
    public func nextAttempt(after attempt: Int, status: Int, retryAfter: Int64?, firstAttempt: Timestamp, now: Timestamp) -> Timestamp? {
        guard !(200..<300).contains(status), allowsAnother(after: attempt) else { return nil }
        var delay = backoff(retry: attempt)
        if [429, 503].contains(status), let retryAfter { delay = max(delay, retryAfter) }
        let next = now.adding(seconds: delay)
        if maxRetryDurationSeconds > 0, next > firstAttempt.adding(seconds: maxRetryDurationSeconds) { return nil }
        return next
    }
}
