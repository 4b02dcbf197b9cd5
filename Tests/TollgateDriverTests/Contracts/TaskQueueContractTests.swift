import Foundation
import Testing
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// A task queue under test, with what the harness can see behind the port.
struct TaskQueueUnderTest: Sendable {
    let queue: any TaskQueue
    /// The tasks the backend holds, by queue then name.
    let tasks: @Sendable () async throws -> [(queue: String, task: HTTPTask)]
    /// Marks a task as run to completion, as a 2xx from its target does.
    let complete: @Sendable (_ queue: String, _ name: String) async throws -> Void
}

/// Where the `TaskQueue` contract runs: the SQLite fake. The Cloud Tasks driver has no
/// peer here (there is no Cloud Tasks emulator); `GoogleDriverTests` checks its requests
/// and answers against Cloud Tasks' discovery document instead.
enum TaskQueueBackend: String, ContractBackend {
    case sqliteFake

    enum Capability: Hashable, Sendable {}

    var testDescription: String { rawValue }
    var capabilities: Set<Capability> { [] }
    var peer: Peer? { nil }

    func open() async throws -> ContractInstance<TaskQueueUnderTest> {
        let queue = SQLiteTaskQueue(try temporaryDatabase())
        return ContractInstance(
            TaskQueueUnderTest(
                queue: queue, tasks: { try await queue.tasks() },
                complete: { try await queue.recordAttempt(queue: $0, name: $1, status: 200, retryAt: nil) }))
    }
}

/// The `TaskQueue` port's contract: Cloud Tasks' naming, dedupe and limits, on every backend.
@Suite struct TaskQueueContractTests {
    static func task(_ name: String?, body: String = "{}") -> HTTPTask {
        HTTPTask(
            name: name, url: "http://127.0.0.1:8080/usage-report", body: Array(body.utf8), headers: ["Content-Type": "application/json"])
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func aNamedTask_isCreatedOnce_andTheSameNameAgainIsAlreadyExists(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            try await under.queue.enqueue(Self.task("report-acct_1-2026-01-01"), queue: "usage-report")
            await expectCode(.alreadyExists) {
                try await under.queue.enqueue(Self.task("report-acct_1-2026-01-01", body: "{\"other\":1}"), queue: "usage-report")
            }
            let held = try await under.tasks()
            #expect(held.count == 1 && held.first?.task.body == Array("{}".utf8), "the first task stands")
        }
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func aTaskName_staysTaken_afterTheTaskRan(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            try await under.queue.enqueue(Self.task("report-1"), queue: "usage-report")
            try await under.complete("usage-report", "report-1")
            await expectCode(.alreadyExists) { try await under.queue.enqueue(Self.task("report-1"), queue: "usage-report") }
        }
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func taskNames_arePerQueue(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            try await under.queue.enqueue(Self.task("same"), queue: "usage-report")
            try await under.queue.enqueue(Self.task("same"), queue: "other-queue")
            #expect(try await under.tasks().map(\.queue) == ["other-queue", "usage-report"])
        }
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func unnamedTasks_eachGetTheirOwnName(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            for _ in 0..<3 { try await under.queue.enqueue(Self.task(nil), queue: "usage-report") }
            let names = try await under.tasks().compactMap(\.task.name)
            #expect(names.count == 3 && Set(names).count == 3)
        }
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func aTask_keepsItsTargetBodyHeadersAndScheduleTime(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            var task = Self.task("kept", body: "{\"account\":\"acct_1\"}")
            task.scheduleTime = Timestamp(secondsSinceEpoch: 1_767_225_600)
            try await under.queue.enqueue(task, queue: "usage-report")
            #expect(try await under.tasks().map(\.task) == [task])
        }
    }

    @Test(arguments: TaskQueueBackend.supporting())
    func namesAndBodiesCloudTasksRefuses_areInvalidArgument_andNothingIsQueued(_ backend: TaskQueueBackend) async throws {
        try await backend.with { under in
            for name in ["", "bad/name", "spaces are not allowed", "é", String(repeating: "a", count: 501)] {
                await expectCode(.invalidArgument) { try await under.queue.enqueue(Self.task(name), queue: "usage-report") }
            }
            let tooBig = HTTPTask(name: "big", url: "http://127.0.0.1/x", body: [UInt8](repeating: 1, count: 1_048_577))
            await expectCode(.invalidArgument) { try await under.queue.enqueue(tooBig, queue: "usage-report") }
            #expect(try await under.tasks().isEmpty)
            try await under.queue.enqueue(Self.task(String(repeating: "a", count: 500)), queue: "usage-report")
        }
    }
}
