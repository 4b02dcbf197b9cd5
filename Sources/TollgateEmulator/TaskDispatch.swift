import Foundation
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// Cloud Tasks dispatch over the SQLite queue, shared by the replayer and the local
/// cloud: each due task is sent to the function its URL names, and the answer decides,
/// by the target queue's RetryConfig, whether and when it runs again.
enum TaskDispatch {
    struct Attempt: Sendable {
        var queued: SQLiteTaskQueue.QueuedTask
        /// The function the task's URL names, nil when none serves that queue.
        var function: String?
    }

    /// The Cloud Tasks function a task URL names (`…/usage-report`), with its queue's
    /// RetryConfig and RateLimits.
    static func target(of url: String) -> (declaration: FunctionDeclaration, retry: TaskRetryConfig, limits: TaskRateLimits)? {
        let name = URL(string: url)?.lastPathComponent ?? ""
        guard let declaration = EmulatedFunction.declarations.first(where: { $0.name == name }),
            case .cloudTasks(_, let retry, let limits) = declaration.trigger
        else { return nil }
        return (declaration, retry, limits)
    }

    /// Sends every task due at `clock.now()` once, one after another, and records each
    /// answer (replays: the order of effects stays the fixture's).
    /// `deliver` answers nil when no response came inside the deadline.
    static func runDue(
        _ queue: SQLiteTaskQueue, clock: any TollgateModel.Clock, isolation: isolated (any Actor)? = #isolation,
        deliver: (SQLiteTaskQueue.QueuedTask, FunctionDeclaration, TaskRetryConfig) async throws -> FunctionResponse?
    ) async throws -> [Attempt] {
        var attempts: [Attempt] = []
        for queued in try await queue.due(at: clock.now()) {
            attempts.append(try await dispatch(queued, queue, clock: clock, deliver: deliver))
        }
        return attempts
    }

    /// Sends every task due at `clock.now()` once, up to each queue's
    /// `maxConcurrentDispatches` at a time, as Cloud Tasks does (the local cloud).
    static func runDueConcurrently(
        _ queue: SQLiteTaskQueue, clock: any TollgateModel.Clock,
        deliver: @escaping @Sendable (SQLiteTaskQueue.QueuedTask, FunctionDeclaration, TaskRetryConfig) async throws -> FunctionResponse?
    ) async throws -> [Attempt] {
        let due = try await queue.due(at: clock.now())
        var attempts: [Attempt] = []
        for name in Set(due.map(\.queue)).sorted() {
            let tasks = due.filter { $0.queue == name }
            let width = tasks.lazy.compactMap { target(of: $0.task.url)?.limits.maxConcurrentDispatches }.first ?? 1
            attempts += try await concurrently(tasks, atMost: width) { queued in
                try await dispatch(queued, queue, clock: clock, deliver: deliver)
            }
        }
        return attempts
    }

    /// Sends one task and records its answer, scheduling the retry its RetryConfig asks for.
    private static func dispatch(
        _ queued: SQLiteTaskQueue.QueuedTask, _ queue: SQLiteTaskQueue, clock: any TollgateModel.Clock,
        isolation: isolated (any Actor)? = #isolation,
        deliver: (SQLiteTaskQueue.QueuedTask, FunctionDeclaration, TaskRetryConfig) async throws -> FunctionResponse?
    ) async throws -> Attempt {
        let name = queued.task.name ?? ""
        guard let (declaration, retry, _) = target(of: queued.task.url) else {
            // Nothing in the local cloud serves that URL: the task fails for good.
            try await queue.recordAttempt(queue: queued.queue, name: name, status: 404, retryAt: nil, at: clock.now())
            return Attempt(queued: queued, function: nil)
        }
        let response = try await deliver(queued, declaration, retry)
        let now = clock.now()
        // No answer in time counts as a failed attempt (Cloud Tasks: DEADLINE_EXCEEDED).
        let status = response?.status ?? 504
        let retryAt = retry.nextAttempt(
            after: queued.retries + 1, status: status, retryAfter: response?.headers["Retry-After"].flatMap { Int64($0) },
            firstAttempt: queued.firstAttempt ?? now, now: now)
        try await queue.recordAttempt(queue: queued.queue, name: name, status: status, retryAt: retryAt, at: now)
        return Attempt(queued: queued, function: declaration.name)
    }
}

extension PublishedMessage {
    /// The message as a push envelope carries it.
    var pubSubMessage: PubSubMessage {
        PubSubMessage(
            data: Data(message.data), attributes: message.attributes, messageId: messageId, publishTime: publishTime,
            orderingKey: message.orderingKey)
    }
}

/// Runs `body` on each item, at most `width` at once (a sender's concurrency limit:
/// Pub/Sub's outstanding pushes, a queue's `maxConcurrentDispatches`); answers the
/// results in the order they finish.
func concurrently<Item: Sendable, Result: Sendable>(
    _ items: [Item], atMost width: Int, _ body: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: Result.self) { group in
        var results: [Result] = []
        for (index, item) in items.enumerated() {
            if index >= width, let done = try await group.next() { results.append(done) }
            group.addTask { try await body(item) }
        }
        for try await done in group { results.append(done) }
        return results
    }
}
