import CoreMetrics
import Foundation
import Prometheus

/// A function's metrics: swift-metrics' API over a Prometheus registry of its own (no
/// global bootstrap, so several hosts in one process — the emulator, the tests — never
/// share counts), served on `GET /metrics` in Prometheus' text format for Google Managed
/// Prometheus to scrape.
///
/// The runtime counts every delivery by trigger and outcome, its latency, the
/// redeliveries it asked for and the dead letters it wrote; handlers add their own
/// counters through ``FunctionContext/count(_:_:by:)``.
public final class FunctionMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Latency buckets from 1 ms to 10 s: a validation is a few milliseconds, an export minutes.
    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.buckets
        self.factory = factory
    }

    /// What became of a delivery, as a label: the sender's view of the status.
    public static func outcome(status: Int, deadLettered: Bool) -> String {
        if deadLettered { return "dead_lettered" }
        switch status {
        case 200..<300: return "ok"
        case 429, 503: return "retried"
        case 500..<600: return "error"
        default: return "rejected"
        }
    }

    func recordDelivery(function: String, trigger: String, status: Int, deadLettered: Bool, latency: Duration) {
        let outcome = Self.outcome(status: status, deadLettered: deadLettered)
        Counter(
            label: "tollgate_requests_total", dimensions: [("function", function), ("trigger", trigger), ("outcome", outcome)],
            factory: factory
        ).increment()
        let (seconds, attoseconds) = latency.components
        CoreMetrics.Timer(
            label: "tollgate_request_duration_seconds", dimensions: [("function", function), ("trigger", trigger)], factory: factory
        ).recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        if outcome == "retried" || outcome == "error" {
            Counter(label: "tollgate_redeliveries_requested_total", dimensions: [("function", function)], factory: factory).increment()
        }
        if deadLettered {
            Counter(label: "tollgate_dead_letters_total", dimensions: [("function", function)], factory: factory).increment()
        }
    }

    /// Adds to a handler's own counter (`tollgate_<name>_total`).
    public func count(_ name: String, _ dimensions: [(String, String)], by amount: Int64 = 1) {
        Counter(label: "tollgate_\(name)_total", dimensions: dimensions, factory: factory).increment(by: amount)
    }

    /// The text exposition format, version 0.0.4.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
