/// The metadata Cloud Scheduler sends with each run of an HTTP-target job.
/// <https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#HttpTarget>
public struct CloudSchedulerRequest: Sendable, Hashable {
    /// The job's short name (the last segment of its resource name).
    public var jobName: String
    /// When the run was scheduled (not when it arrived).
    public var scheduleTime: Timestamp

    public init(jobName: String, scheduleTime: Timestamp) {
        self.jobName = jobName
        self.scheduleTime = scheduleTime
    }

    /// Reads `X-CloudScheduler-JobName` and `X-CloudScheduler-ScheduleTime`.
    /// - Throws: `INVALID_ARGUMENT` naming the missing or malformed header.
    public init(header: (String) -> String?) throws {
        guard header("X-CloudScheduler") == "true", let job = header("X-CloudScheduler-JobName"), !job.isEmpty else {
            throw TollgateError(
                .invalidArgument, "headers X-CloudScheduler and X-CloudScheduler-JobName are missing: not a Cloud Scheduler request")
        }
        guard let text = header("X-CloudScheduler-ScheduleTime"), let time = Timestamp(rfc3339: text) else {
            throw TollgateError(.invalidArgument, "header X-CloudScheduler-ScheduleTime is missing or not RFC 3339")
        }
        jobName = job
        scheduleTime = time
    }

    public var headers: [String: String] {
        ["X-CloudScheduler": "true", "X-CloudScheduler-JobName": jobName, "X-CloudScheduler-ScheduleTime": scheduleTime.rfc3339]
    }
}
