import CoreMetrics
import Foundation
import Prometheus
import Synchronization

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
    /// Handles made once per label set: a delivery then costs a dictionary lookup, not a
    /// handle, a name sanitisation and a registry lookup per metric.
    private let handles = Mutex<[[String]: AnyObject]>([:])

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
        counter("tollgate_requests_total", [("function", function), ("trigger", trigger), ("outcome", outcome)]).increment()
        let (seconds, attoseconds) = latency.components
        timer("tollgate_request_duration_seconds", [("function", function), ("trigger", trigger)])
            .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        if outcome == "retried" || outcome == "error" {
            counter("tollgate_redeliveries_requested_total", [("function", function)]).increment()
        }
        if deadLettered { counter("tollgate_dead_letters_total", [("function", function)]).increment() }
    }

    /// Adds to a handler's own counter (`tollgate_<name>_total`).
    public func count(_ name: String, _ dimensions: [(String, String)], by amount: Int64 = 1) {
        counter("tollgate_\(name)_total", dimensions).increment(by: amount)
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        handle(label, dimensions) { CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory) }
    }

    private func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        handle(label, dimensions) { CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory) }
    }

    private func handle<Handle: AnyObject>(_ label: String, _ dimensions: [(String, String)], make: () -> Handle) -> Handle {
        // The label leads the key, so a counter and a timer never share one.
        let key = [label] + dimensions.flatMap { [$0.0, $0.1] }
        return handles.withLock { made in
            if let handle = made[key] as? Handle { return handle }
            let handle = make()
            made[key] = handle
            return handle
        }
    }

    /// The text exposition format, version 0.0.4.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
