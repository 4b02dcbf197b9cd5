# Alerts on what every function's /metrics says, one condition for all functions each
# (Cloud Monitoring bills $1.50 a month per condition: three conditions per function were
# 27 of them). Each query keeps the function label, so an incident names its function.
locals {
  # The p95 latency each function alerts above: 80% of its request deadline, unless set.
  latency_threshold = { for name, f in var.functions : name => lookup(var.latency_p95_seconds, name, f.timeout_seconds * 0.8) }
  # The same as a PromQL vector labelled by function, to compare each function's p95 with its own.
  latency_thresholds_promql = join(" or ", [
    for name, seconds in local.latency_threshold : "label_replace(vector(${seconds}), \"function\", \"${name}\", \"\", \"\")"
  ])
  # Service level objectives, alerted on by the rate each function burns its error budget
  # (the SRE workbook's multiwindow alerts): fast, 2% of a 30-day budget in an hour, seen
  # over 1 h and 5 min; slow, 5% in six hours, over 6 h and 30 min.
  availability_budget          = 1 - var.slo_availability
  latency_budget               = 1 - var.slo_latency_share
  slo_latency_bucket           = tostring(var.slo_latency_seconds)
  function_alert_documentation = "A Tollgate function, named by the incident's `function` label: its logs (`resource.labels.service_name` = that name), its dead letters (`tollgate dead-letters list`), and the runbook in deploy/README.md."
}

# The three alerts on every function: what each watches, how long it must hold, how often
# it is evaluated.
locals {
  function_alerts = {
    error_rate = {
      policy    = "Tollgate: error rate above ${var.error_rate_threshold * 100}%"
      condition = "a function answers more than ${var.error_rate_threshold * 100}% of its deliveries with an error"
      query     = <<-EOT
        sum by (function) (rate(tollgate_requests_total{outcome="error"}[5m]))
          / sum by (function) (rate(tollgate_requests_total[5m])) > ${var.error_rate_threshold}
      EOT
      duration  = "300s"
      interval  = "60s"
    }
    latency = {
      policy    = "Tollgate: p95 latency above the function's threshold"
      condition = "a function's p95 latency passes its threshold (80% of its deadline unless latency_p95_seconds says)"
      query     = <<-EOT
        histogram_quantile(0.95, sum by (function, le) (rate(tollgate_request_duration_seconds_bucket[5m])))
          > on (function) group_left () (${local.latency_thresholds_promql})
      EOT
      duration  = "300s"
      interval  = "60s"
    }
    availability_fast_burn = {
      policy    = "Tollgate: availability SLO (${var.slo_availability * 100}%) burning fast"
      condition = "a function's errors spend its budget 14.4 times too fast (1 h and 5 min)"
      query     = <<-EOT
        (sum by (function) (rate(tollgate_requests_total{outcome="error"}[1h])) / sum by (function) (rate(tollgate_requests_total[1h])) > ${format("%.6g", 14.4 * local.availability_budget)})
          and (sum by (function) (rate(tollgate_requests_total{outcome="error"}[5m])) / sum by (function) (rate(tollgate_requests_total[5m])) > ${format("%.6g", 14.4 * local.availability_budget)})
      EOT
      duration  = "60s"
      interval  = "60s"
    }
    availability_slow_burn = {
      policy    = "Tollgate: availability SLO (${var.slo_availability * 100}%) burning slowly"
      condition = "a function's errors spend its budget 6 times too fast (6 h and 30 min)"
      query     = <<-EOT
        (sum by (function) (rate(tollgate_requests_total{outcome="error"}[6h])) / sum by (function) (rate(tollgate_requests_total[6h])) > ${format("%.6g", 6 * local.availability_budget)})
          and (sum by (function) (rate(tollgate_requests_total{outcome="error"}[30m])) / sum by (function) (rate(tollgate_requests_total[30m])) > ${format("%.6g", 6 * local.availability_budget)})
      EOT
      duration  = "60s"
      interval  = "300s"
    }
    latency_fast_burn = {
      policy    = "Tollgate: latency SLO (${var.slo_latency_share * 100}% under ${var.slo_latency_seconds} s) burning fast"
      condition = "a function's slow requests spend its budget 14.4 times too fast (1 h and 5 min)"
      query     = <<-EOT
        (1 - sum by (function) (rate(tollgate_request_duration_seconds_bucket{le="${local.slo_latency_bucket}"}[1h])) / sum by (function) (rate(tollgate_request_duration_seconds_count[1h])) > ${format("%.6g", 14.4 * local.latency_budget)})
          and (1 - sum by (function) (rate(tollgate_request_duration_seconds_bucket{le="${local.slo_latency_bucket}"}[5m])) / sum by (function) (rate(tollgate_request_duration_seconds_count[5m])) > ${format("%.6g", 14.4 * local.latency_budget)})
      EOT
      duration  = "60s"
      interval  = "60s"
    }
    latency_slow_burn = {
      policy    = "Tollgate: latency SLO (${var.slo_latency_share * 100}% under ${var.slo_latency_seconds} s) burning slowly"
      condition = "a function's slow requests spend its budget 6 times too fast (6 h and 30 min)"
      query     = <<-EOT
        (1 - sum by (function) (rate(tollgate_request_duration_seconds_bucket{le="${local.slo_latency_bucket}"}[6h])) / sum by (function) (rate(tollgate_request_duration_seconds_count[6h])) > ${format("%.6g", 6 * local.latency_budget)})
          and (1 - sum by (function) (rate(tollgate_request_duration_seconds_bucket{le="${local.slo_latency_bucket}"}[30m])) / sum by (function) (rate(tollgate_request_duration_seconds_count[30m])) > ${format("%.6g", 6 * local.latency_budget)})
      EOT
      duration  = "60s"
      interval  = "300s"
    }
    # Each dead letter is a delivery a person must look at.
    dead_letters = {
      policy    = "Tollgate: dead letters"
      condition = "a function dead-lettered a delivery in the last hour"
      query     = "sum by (function) (increase(tollgate_dead_letters_total[1h])) > 0"
      duration  = "0s"
      interval  = "300s"
    }
  }
}

resource "google_monitoring_alert_policy" "function" {
  for_each     = local.function_alerts
  display_name = each.value.policy
  combiner     = "OR"
  conditions {
    display_name = each.value.condition
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = each.value.duration
      evaluation_interval = each.value.interval
    }
  }
  alert_strategy {
    auto_close = "1800s"
  }
  documentation {
    mime_type = "text/markdown"
    content   = local.function_alert_documentation
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

# Uptime checks: each public service (the webhooks, and the gateway when deployed) answers
# its health path over HTTPS from Google's checkers every five minutes; one alert fires
# when a host fails from more than one region.
locals {
  uptime_targets = merge(
    {
      for name, f in var.functions : name => { host = trimprefix(local.service_url[name], "https://"), path = "/healthz" }
      if f.ingress == "INGRESS_TRAFFIC_ALL"
    },
    # The gateway answers this path itself, asking no one; /healthz is the API's.
    local.gateway_enabled ? { gateway = { host = var.gateway.domain, path = "/_tollgate/healthz" } } : {},
  )
}

resource "google_monitoring_uptime_check_config" "public" {
  for_each     = local.uptime_targets
  display_name = "Tollgate ${each.key}"
  timeout      = "10s"
  period       = "300s"
  http_check {
    path         = each.value.path
    port         = 443
    use_ssl      = true
    validate_ssl = true
  }
  monitored_resource {
    type   = "uptime_url"
    labels = { project_id = var.project, host = each.value.host }
  }
  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "uptime" {
  display_name = "Tollgate: a public service fails its uptime check"
  combiner     = "OR"
  conditions {
    display_name = "a host fails its check from more than one region"
    condition_threshold {
      filter          = "metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type = \"uptime_url\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.host"]
      }
    }
  }
  notification_channels = var.notification_channels
  depends_on            = [google_project_service.api]
}
