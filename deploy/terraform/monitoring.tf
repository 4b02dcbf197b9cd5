# One alert policy per function, on what its /metrics says: the share of deliveries
# answered with an error, and the p95 latency against its deadline. Dead letters get
# their own condition: each is a delivery a person must look at.
resource "google_monitoring_alert_policy" "function" {
  for_each     = var.functions
  display_name = "Tollgate ${each.key}"
  combiner     = "OR"

  conditions {
    display_name = "${each.key}: error rate above ${var.error_rate_threshold * 100}%"
    condition_prometheus_query_language {
      query               = <<-EOT
        sum(rate(tollgate_requests_total{function="${each.key}",outcome="error"}[5m]))
          / sum(rate(tollgate_requests_total{function="${each.key}"}[5m])) > ${var.error_rate_threshold}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  conditions {
    display_name = "${each.key}: p95 latency above ${lookup(var.latency_p95_seconds, each.key, each.value.timeout_seconds * 0.8)} s"
    condition_prometheus_query_language {
      query               = <<-EOT
        histogram_quantile(0.95, sum by (le) (rate(tollgate_request_duration_seconds_bucket{function="${each.key}"}[5m])))
          > ${lookup(var.latency_p95_seconds, each.key, each.value.timeout_seconds * 0.8)}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  conditions {
    display_name = "${each.key}: dead letters"
    condition_prometheus_query_language {
      query               = "sum(increase(tollgate_dead_letters_total{function=\"${each.key}\"}[1h])) > 0"
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Tollgate's `${each.key}`: its logs (`resource.labels.service_name=\"${each.key}\"`), its dead letters (`tollgate dead-letters list`), and the runbook in deploy/README.md."
  }

  notification_channels = var.notification_channels
  depends_on            = [google_project_service.api]
}

# Messages Pub/Sub itself gave up on (after maxDeliveryAttempts) wait in the
# dead-letter topics' hold subscriptions.
resource "google_monitoring_alert_policy" "pubsub_dead_letters" {
  display_name = "Tollgate: Pub/Sub dead letters"
  combiner     = "OR"
  conditions {
    display_name = "messages waiting in a dead-letter hold subscription"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.labels.subscription_id = monitoring.regex.full_match(\".*-dead-letter-hold\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  notification_channels = var.notification_channels
  depends_on            = [google_project_service.api]
}
