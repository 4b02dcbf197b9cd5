# A Cloud Scheduler job per scheduled function, with an OIDC token for the service URL.
# No scheduler retries: each job catches up by itself on its next run.
resource "google_cloud_scheduler_job" "job" {
  for_each         = { for name, f in var.functions : name => f if f.trigger == "scheduler" }
  name             = each.value.job
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = each.value.time_zone
  attempt_deadline = "${min(each.value.timeout_seconds, 1800)}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${local.service_url[each.key]}/"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.service_url[each.key]
    }
  }

  depends_on = [google_project_service.api]
}
