import Foundation
import Logging
import Synchronization
import TollgateDrivers
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

/// Every function at once, wired as the cloud wires them, on one SQLite state file:
/// Pub/Sub pushes the functions' subscriptions with redelivery and dead-letter topics,
/// Cloud Scheduler fires each declared job on its cron schedule, Cloud Tasks dispatches
/// queued tasks by their queue's RetryConfig. Everything it delivers goes through the
/// same `deliver` a caller from outside uses, and is written to the live log.
public actor LocalCloud {
    /// A function as the local cloud reaches it: in this process, or a process of its own.
    public struct Target: Sendable {
        public var declaration: FunctionDeclaration
        /// Answers a request; nil when no answer came within `deadline`.
        public var deliver: @Sendable (FunctionRequest, _ deadline: Duration) async -> FunctionResponse?

        public init(declaration: FunctionDeclaration, deliver: @escaping @Sendable (FunctionRequest, Duration) async -> FunctionResponse?) {
            self.declaration = declaration
            self.deliver = deliver
        }
    }

    public enum ClockMode: Sendable {
        case wall
        /// Time stands still from `start` until told to move (`advance`).
        case virtual(start: Timestamp)
    }

    /// One delivery, as the live log shows it.
    public struct Delivery: Sendable {
        public var time: Timestamp
        public var function: String
        public var trigger: String
        public var detail: String
        public var status: Int?
        public var latency: Duration
        public var attempt: Int
        public var outcome: String
    }

    struct Job {
        var declaration: FunctionDeclaration
        var name: String
        var schedule: CronSchedule
        var next: Timestamp
    }

    public nonisolated let database: SQLiteDatabase
    public nonisolated let clock: any TollgateModel.Clock
    public nonisolated let issuer: LocalOIDCIssuer
    /// The local Clerk instance the functions trust, which signs `tollgate session` tokens.
    public nonisolated let clerk: LocalOIDCIssuer?
    nonisolated let virtualClock: VirtualClock?
    let subscriptions: SQLitePushSubscriptions
    let queue: SQLiteTaskQueue
    let publisher: SQLitePublisher
    nonisolated let targets: [String: Target]
    nonisolated let outages = Mutex<[String: (status: Int, remaining: Int)]>([:])
    nonisolated let log: @Sendable (Delivery) -> Void
    var jobs: [String: Job] = [:]
    var busy = false
    var waiting: [CheckedContinuation<Void, Never>] = []

    /// - Parameters:
    ///   - targets: how to reach each function, by name (every declared function).
    ///   - log: called once per delivery, after its answer.
    public init(
        database: SQLiteDatabase, clock: any TollgateModel.Clock, issuer: LocalOIDCIssuer, clerk: LocalOIDCIssuer? = nil,
        targets: [String: Target], log: @escaping @Sendable (Delivery) -> Void
    ) {
        self.database = database
        self.clock = clock
        self.virtualClock = clock as? VirtualClock
        self.issuer = issuer
        self.clerk = clerk
        self.targets = targets
        self.log = log
        subscriptions = SQLitePushSubscriptions(database)
        queue = SQLiteTaskQueue(database)
        publisher = SQLitePublisher(database)
    }

    /// Creates the topics and subscriptions and schedules every job from now on.
    public func start() async throws {
        try await PushDispatch.declare(in: database)
        let now = clock.now()
        for declaration in EmulatedFunction.declarations {
            guard case .scheduler(let job, let expression, let zone) = declaration.trigger else { continue }
            let schedule = try CronSchedule(expression, timeZone: zone)
            jobs[job] = Job(declaration: declaration, name: job, schedule: schedule, next: schedule.next(after: now))
        }
    }

    /// The declared jobs with their schedules and next runs, by name.
    public func schedule() -> [(job: String, function: String, schedule: CronSchedule, next: Timestamp)] {
        jobs.values.sorted { $0.name < $1.name }.map { ($0.name, $0.declaration.name, $0.schedule, $0.next) }
    }

    // MARK: Deliveries

    /// Delivers a request to a function as the cloud would route it, with any outage
    /// asked for, and writes the live log line.
    nonisolated func call(
        _ function: String, _ request: FunctionRequest, deadline: Duration, trigger: String, detail: String, attempt: Int = 1
    ) async -> FunctionResponse? {
        guard let target = targets[function] else { return FunctionResponse.rejected(404, code: "NOT_FOUND", "no function \(function)") }
        let started = ContinuousClock.now
        var response: FunctionResponse?
        if let status = takeOutage(function) {
            response = FunctionResponse.rejected(status, code: "UNAVAILABLE", "local outage of \(function)")
        } else {
            response = await target.deliver(request, deadline)
        }
        let latency = ContinuousClock.now - started
        // An answer after the deadline is no answer: the sender gave up waiting.
        if latency > deadline { response = nil }
        log(
            Delivery(
                time: clock.now(), function: function, trigger: trigger, detail: detail, status: response?.status, latency: latency,
                attempt: attempt, outcome: ""))
        return response
    }

    /// A request from outside (the developer, Stripe's CLI, a gateway) to a function's URL.
    public nonisolated func deliverFromOutside(_ function: String, _ request: FunctionRequest) async -> FunctionResponse {
        let trigger = targets[function]?.declaration.trigger.kind.rawValue ?? TriggerKind.http.rawValue
        let answer = await call(function, request, deadline: .seconds(300), trigger: trigger, detail: "\(request.method) \(request.path)")
        return answer ?? FunctionResponse.rejected(504, code: "DEADLINE_EXCEEDED", "\(function) did not answer in time")
    }

    /// A push from Google's Pub/Sub emulator, which signs nothing: signed here with an ID
    /// token for the function's URL from the push service account, as Pub/Sub signs a push
    /// subscription's deliveries, and delivered within the subscription's ack deadline.
    public nonisolated func deliverSignedPush(_ function: String, _ request: FunctionRequest) async -> FunctionResponse {
        guard let declaration = targets[function]?.declaration else {
            return FunctionResponse.rejected(404, code: "NOT_FOUND", "no function \(function)")
        }
        var request = request
        do {
            let token = try senders(declaration).idToken(audience: LocalEnvironment.url(of: function))
            request.headers = request.headers.filter { $0.name.lowercased() != "authorization" } + [("Authorization", "Bearer \(token)")]
        } catch {
            return FunctionResponse.rejected(500, code: "INTERNAL", "could not sign the push: \(error)")
        }
        let ackDeadline: Int
        if case .pubSub(_, _, let seconds) = declaration.trigger { ackDeadline = seconds } else { ackDeadline = 10 }
        let answer = await call(
            function, request, deadline: .seconds(ackDeadline), trigger: TriggerKind.pubSub.rawValue,
            detail: "push from the Pub/Sub emulator \(request.path)")
        return answer ?? FunctionResponse.rejected(504, code: "DEADLINE_EXCEEDED", "\(function) did not answer within the ack deadline")
    }

    /// The next `deliveries` calls to `function` answer `status` without reaching it.
    public nonisolated func outage(_ function: String, status: Int, deliveries: Int) throws {
        guard targets[function] != nil else { throw TollgateError(.notFound, "no function \(function)") }
        guard (400...599).contains(status), deliveries > 0 else {
            throw TollgateError(.invalidArgument, "an outage needs a 4xx or 5xx status and at least one delivery")
        }
        outages.withLock { $0[function] = (status, deliveries) }
    }

    nonisolated func takeOutage(_ function: String) -> Int? {
        outages.withLock { outages in
            guard let outage = outages[function], outage.remaining > 0 else { return nil }
            outages[function] = outage.remaining == 1 ? nil : (outage.status, outage.remaining - 1)
            return outage.status
        }
    }

    nonisolated let tokens = IDTokenCache()

    nonisolated func senders(_ declaration: FunctionDeclaration) -> Senders {
        Senders(issuer: issuer, clock: clock, fixtureDirectory: URL(fileURLWithPath: "."), function: declaration, tokens: tokens)
    }

    /// Publishes to a topic, as the Pub/Sub API does; pushes follow in `runDue`.
    public func publish(_ message: OutgoingMessage, to topic: String) async throws -> String {
        try await publisher.publish(message, to: topic)
    }

    /// Runs a job now, as `gcloud scheduler jobs run` does; its schedule is unchanged.
    /// - Throws: `NOT_FOUND` for a job no function declares.
    public func trigger(job name: String, body: Data = Data()) async throws -> FunctionResponse? {
        guard let job = jobs[name] else {
            throw TollgateError(.notFound, "no job \(name); jobs: \(jobs.keys.sorted().joined(separator: ", "))")
        }
        return try await exclusively { try await fire(job, scheduleTime: clock.now(), body: body) }
    }

    /// One pass of dispatch at a time: the actor's awaits would otherwise let two passes
    /// take the same due delivery.
    func exclusively<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        while busy { await withCheckedContinuation { waiting.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiting.isEmpty { waiting.removeFirst().resume() }
        }
        return try await body()
    }

    func fire(_ job: Job, scheduleTime: Timestamp, body: Data = Data()) async throws -> FunctionResponse? {
        let request = try senders(job.declaration).job(scheduleTime: scheduleTime, body: body)
        // Cloud Scheduler's attempt deadline for HTTP targets defaults to 3 minutes.
        let response = await call(
            job.declaration.name, request, deadline: .seconds(180), trigger: "scheduler", detail: "\(job.name) \(scheduleTime.rfc3339)")
        return response
    }

    /// Runs everything due at the clock's current time: pushes, tasks, then jobs, again
    /// until nothing more is due now (a push may publish, an export enqueues tasks).
    /// - Returns: when the next thing is due.
    @discardableResult
    public func runDue() async throws -> Timestamp? {
        try await exclusively { try await runDueNow() }
    }

    @discardableResult
    func runDueNow() async throws -> Timestamp? {
        for _ in 0..<1_000 {
            let now = clock.now()
            // One read says whether anything is due: most passes of a virtual month find
            // only a job, and every read is a hop to the database's thread and back.
            let outlook = try await subscriptions.outlook()
            var worked = false
            if outlook.newMessages || outlook.nextPush.map({ $0 <= now }) == true {
                let due = try await subscriptions.due(at: now)
                worked = !due.isEmpty
                try await pushConcurrently(due)
            }
            if outlook.nextTask.map({ $0 <= now }) == true {
                let attempts = try await TaskDispatch.runDueConcurrently(queue, clock: clock) { queued, declaration, retry in
                    let request = try self.senders(declaration).queued(queued)
                    return await self.call(
                        declaration.name, request, deadline: .seconds(retry.dispatchDeadlineSeconds), trigger: "cloudtasks",
                        detail: "\(queued.queue)/\(queued.task.name ?? "")", attempt: queued.retries + 1)
                }
                worked = worked || !attempts.isEmpty
            }
            for name in jobs.keys.sorted() {
                guard var job = jobs[name], job.next <= now else { continue }
                let scheduled = job.next
                // Runs that fell due while earlier deliveries held the loop are not made up,
                // as Cloud Scheduler does not make up missed runs: next is the first after now.
                job.next = job.schedule.next(after: max(scheduled, now))
                jobs[name] = job
                _ = try await fire(job, scheduleTime: scheduled)
                worked = true
            }
            if !worked {
                return ([outlook.nextPush, outlook.nextTask] + jobs.values.map { Optional($0.next) }).compactMap { $0 }.min()
            }
        }
        // Still busy after a thousand rounds: come back at once.
        return clock.now()
    }

    /// Pushes in flight at once; the bound keeps a backlog from opening hundreds of
    /// requests at once.
    public static let outstandingPushes = 16

    func pushConcurrently(_ deliveries: [SQLitePushSubscriptions.Due]) async throws {
        let attempts = try await PushDispatch.runConcurrently(deliveries, subscriptions, clock: clock, width: Self.outstandingPushes) {
            due, function, path in
            // A subscription left in the state file by a function that no longer exists:
            // its push endpoint answers 404, a nack like any other.
            guard let declaration = self.targets[function]?.declaration else {
                return FunctionResponse.rejected(404, code: "NOT_FOUND", "no function \(function)")
            }
            let request = try self.senders(declaration).push(
                due.message.pubSubMessage, topic: due.subscription.topic, to: declaration, path: path, deliveryAttempt: due.deliveryAttempt)
            return await self.call(
                function, request, deadline: .seconds(Int64(due.subscription.ackDeadlineSeconds)), trigger: "pubsub",
                detail: "\(due.subscription.topic)/\(due.message.messageId)", attempt: due.previousAttempts + 1)
        }
        for attempt in attempts {
            guard case .deadLettered(let topic, let id) = attempt.outcome else { continue }
            log(
                Delivery(
                    time: clock.now(), function: attempt.function, trigger: "pubsub",
                    detail: "\(attempt.due.subscription.topic)/\(attempt.due.message.messageId)", status: nil, latency: .zero,
                    attempt: attempt.due.previousAttempts + 1, outcome: "dead-lettered to \(topic) as \(id)"))
        }
    }

    /// Virtual clock only: moves time forward by `seconds`, stopping at every moment
    /// something is due on the way, so a month runs every job and retry it would have.
    /// - Throws: `FAILED_PRECONDITION` on the wall clock.
    public func advance(seconds: Int64) async throws -> Timestamp {
        guard let virtualClock else {
            throw TollgateError(.failedPrecondition, "the clock is the wall clock; start with --clock virtual to move it")
        }
        guard seconds >= 0 else { throw TollgateError(.invalidArgument, "time only moves forward") }
        return try await exclusively {
            let target = virtualClock.now().adding(seconds: seconds)
            var next = try await runDueNow()
            while let due = next, due <= target {
                virtualClock.move(to: due)
                next = try await runDueNow()
            }
            virtualClock.move(to: target)
            try await runDueNow()
            return virtualClock.now()
        }
    }

    /// Runs until cancelled: what is due now, then a short sleep, so messages and tasks
    /// that function processes add to the state file are picked up within `poll`.
    public func run(poll: Duration = .milliseconds(100)) async {
        while !Task.isCancelled {
            do {
                let next = try await runDue()
                var pause = poll
                if virtualClock == nil, let next {
                    let wait = Duration.microseconds(max(0, next.microsecondsSinceEpoch - clock.now().microsecondsSinceEpoch))
                    pause = min(poll, wait)
                }
                try await Task.sleep(for: pause)
            } catch is CancellationError {
                return
            } catch {
                log(
                    Delivery(
                        time: clock.now(), function: "local-cloud", trigger: "-", detail: "\(error)", status: nil, latency: .zero,
                        attempt: 0,
                        outcome: "error"))
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
