# Each Cloud Tasks queue with the RetryConfig its target function declares (the
# function dead-letters on the attempt it knows is the last).
resource "google_cloud_tasks_queue" "queue" {
  for_each = var.queues
  name     = each.key
  location = var.region

  retry_config {
    max_attempts       = each.value.max_attempts
    min_backoff        = each.value.min_backoff
    max_backoff        = each.value.max_backoff
    max_doublings      = each.value.max_doublings
    max_retry_duration = each.value.max_retry_duration
  }

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.api]
}
