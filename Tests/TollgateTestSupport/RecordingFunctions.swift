import Foundation
import Testing
import TollgateModel
import TollgateRuntime

/// A Pub/Sub function for runtime tests: records what it got, or throws what it is told.
package struct RecordingPubSubFunction: FunctionHandler {
    package typealias Event = PubSubEvent
    package let declaration = FunctionDeclaration(
        name: "recorder", trigger: .pubSub(topic: "usage-events", maxDeliveryAttempts: 5, ackDeadlineSeconds: 10))
    package let received = Recorder<PubSubEvent>()
    package let failure: TollgateError?

    package init(failure: TollgateError? = nil) { self.failure = failure }

    package func handle(_ event: PubSubEvent, context: FunctionContext) async throws -> FunctionResponse {
        if let failure { throw failure }
        received.append(event)
        return FunctionResponse(status: 204)
    }
}

package struct RecordingTaskFunction: FunctionHandler {
    package typealias Event = TaskEvent
    package let declaration = FunctionDeclaration(
        name: "tasker", trigger: .cloudTasks(queue: "usage-report", retry: TaskRetryConfig(maxAttempts: 5)))
    package let received = Recorder<TaskEvent>()
    package init() {}
    package func handle(_ event: TaskEvent, context: FunctionContext) async throws -> FunctionResponse {
        received.append(event)
        return FunctionResponse(status: 200)
    }
}

package struct RecordingSchedulerFunction: FunctionHandler {
    package typealias Event = SchedulerEvent
    package let declaration = FunctionDeclaration(
        name: "ticker", trigger: .scheduler(job: "quota-reset", schedule: "0 * * * *", timeZone: "Etc/UTC"))
    package let received = Recorder<SchedulerEvent>()
    package init() {}
    package func handle(_ event: SchedulerEvent, context: FunctionContext) async throws -> FunctionResponse {
        received.append(event)
        return FunctionResponse(status: 200)
    }
}
