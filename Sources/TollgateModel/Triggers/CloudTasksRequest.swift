import Foundation

/// The metadata Cloud Tasks sends with each attempt of an HTTP task.
/// <https://cloud.google.com/tasks/docs/creating-http-target-tasks#handler>
public struct CloudTasksRequest: Sendable, Hashable {
    public var queueName: String
    public var taskName: String
    /// Times the task was retried; 0 on the first attempt.
    public var retryCount: Int
    /// Times a response was received from the handler.
    public var executionCount: Int
    /// The schedule time, in seconds since the epoch.
    public var eta: Double
    public var previousResponse: Int?
    public var retryReason: String?

    public init(
        queueName: String, taskName: String, retryCount: Int, executionCount: Int, eta: Double,
        previousResponse: Int? = nil, retryReason: String? = nil
    ) {
        self.queueName = queueName
        self.taskName = taskName
        self.retryCount = retryCount
        self.executionCount = executionCount
        self.eta = eta
        self.previousResponse = previousResponse
        self.retryReason = retryReason
    }

    /// Reads the `X-CloudTasks-*` headers.
    /// - Throws: `INVALID_ARGUMENT` naming the missing or malformed header.
    public init(header: (String) -> String?) throws {
        func required(_ name: String) throws -> String {
            guard let value = header(name), !value.isEmpty else {
                throw TollgateError(.invalidArgument, "header \(name) is missing: not a Cloud Tasks request")
            }
            return value
        }
        // Counts up to 2³¹−1 (so `count + 1` cannot overflow), an ETA within years 1–9999,
        // a previous response that is an HTTP status.
        func count(_ name: String) throws -> Int {
            guard let value = Int(try required(name)), (0...Int(Int32.max)).contains(value) else {
                throw TollgateError(.invalidArgument, "header \(name) is not a count from 0 to 2147483647")
            }
            return value
        }
        queueName = try required("X-CloudTasks-QueueName")
        taskName = try required("X-CloudTasks-TaskName")
        retryCount = try count("X-CloudTasks-TaskRetryCount")
        executionCount = try count("X-CloudTasks-TaskExecutionCount")
        guard let eta = Double(try required("X-CloudTasks-TaskETA")), eta.isFinite,
            Double(Timestamp.unixSecondsRange.lowerBound)...Double(Timestamp.unixSecondsRange.upperBound) ~= eta
        else {
            throw TollgateError(.invalidArgument, "header X-CloudTasks-TaskETA is not a Unix time within years 1 to 9999")
        }
        self.eta = eta
        previousResponse = header("X-CloudTasks-TaskPreviousResponse").flatMap { Int($0) }.flatMap { (100...599).contains($0) ? $0 : nil }
        retryReason = header("X-CloudTasks-TaskRetryReason")
    }

    /// The headers Cloud Tasks sends for this attempt.
    public var headers: [String: String] {
        var headers = [
            "X-CloudTasks-QueueName": queueName, "X-CloudTasks-TaskName": taskName,
            "X-CloudTasks-TaskRetryCount": String(retryCount), "X-CloudTasks-TaskExecutionCount": String(executionCount),
            "X-CloudTasks-TaskETA": String(format: "%.6f", eta),
        ]
        if let previousResponse { headers["X-CloudTasks-TaskPreviousResponse"] = String(previousResponse) }
        if let retryReason { headers["X-CloudTasks-TaskRetryReason"] = retryReason }
        return headers
    }
}
