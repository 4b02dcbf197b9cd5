import Foundation
import TollgateModel

/// A plain HTTP request.
public struct HTTPEvent: TriggerEvent {
    public static let kind = TriggerKind.http
    public var request: FunctionRequest
    public static func decode(_ request: FunctionRequest) throws -> HTTPEvent { HTTPEvent(request: request) }
    public var metadata: [String: String] { ["path": request.path] }
}

/// A Pub/Sub message, from a push subscription's envelope or from a CloudEvent
/// (`google.cloud.pubsub.topic.v1.messagePublished`, binary or structured mode) as
/// Eventarc delivers it. The binding is chosen by the request's headers, as the
/// CloudEvents HTTP binding specifies.
public struct PubSubEvent: TriggerEvent {
    public static let kind = TriggerKind.pubSub
    public var envelope: PubSubPushEnvelope
    public var message: PubSubMessage { envelope.message }

    public static func decode(_ request: FunctionRequest) throws -> PubSubEvent {
        let contentType = request.header("Content-Type")?.lowercased() ?? ""
        let envelopeJSON: Data
        if contentType.hasPrefix("application/cloudevents+json") {
            envelopeJSON = try pubSubData(of: CloudEvent.structured(body: request.body))
        } else if request.header("ce-specversion") != nil {
            envelopeJSON = try pubSubData(of: CloudEvent.binary(header: request.header, body: request.body))
        } else {
            envelopeJSON = request.body
        }
        do {
            return PubSubEvent(envelope: try JSONDecoder().decode(PubSubPushEnvelope.self, from: envelopeJSON))
        } catch {
            throw TollgateError(.invalidArgument, "not a Pub/Sub push envelope: \(describe(error))")
        }
    }

    private static func pubSubData(of event: CloudEvent) throws -> Data {
        guard event.type == CloudEvent.pubSubMessagePublished else {
            throw TollgateError(.invalidArgument, "CloudEvent type \(event.type) is not \(CloudEvent.pubSubMessagePublished)")
        }
        return event.data
    }

    public var metadata: [String: String] {
        var metadata = ["messageId": message.messageId, "subscription": envelope.subscription]
        if let attempt = envelope.deliveryAttempt { metadata["deliveryAttempt"] = String(attempt) }
        return metadata
    }
}

/// A Cloud Tasks attempt: its `X-CloudTasks-*` metadata and the task's body.
public struct TaskEvent: TriggerEvent {
    public static let kind = TriggerKind.cloudTasks
    public var task: CloudTasksRequest
    public var body: Data

    public static func decode(_ request: FunctionRequest) throws -> TaskEvent {
        TaskEvent(task: try CloudTasksRequest(header: request.header), body: request.body)
    }

    public var metadata: [String: String] {
        ["queue": task.queueName, "task": task.taskName, "retryCount": String(task.retryCount)]
    }
}

/// A Cloud Scheduler run: its `X-CloudScheduler-*` metadata and the job's body.
public struct SchedulerEvent: TriggerEvent {
    public static let kind = TriggerKind.scheduler
    public var run: CloudSchedulerRequest
    public var body: Data

    public static func decode(_ request: FunctionRequest) throws -> SchedulerEvent {
        SchedulerEvent(run: try CloudSchedulerRequest(header: request.header), body: request.body)
    }

    public var metadata: [String: String] { ["job": run.jobName, "scheduleTime": run.scheduleTime.rfc3339] }
}

/// A short, log-safe description of a decoding error.
func describe(_ error: any Error) -> String {
    switch error {
    case let error as TollgateError: return error.message
    case DecodingError.keyNotFound(let key, let context):
        return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
    case DecodingError.dataCorrupted(let context):
        return context.codingPath.isEmpty ? "malformed JSON" : context.debugDescription
    default: return "\(error)"
    }
}
