# The secrets the functions declare. Terraform creates the secrets, never their
# values: a person adds each version (gcloud secrets versions add NAME --data-file=-),
# so no secret is ever in Terraform's state or in this repository.
resource "google_secret_manager_secret" "secret" {
  for_each  = local.secret_ids
  secret_id = each.key
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

# The metrics collector's RunMonitoring configuration, mounted at /etc/rungmp. It is
# configuration, not a secret; Secret Manager is how Cloud Run mounts files.
resource "google_secret_manager_secret" "collector_config" {
  secret_id = "tollgate-collector-config"
  replication {
    auto {}
  }
  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "collector_config" {
  secret      = google_secret_manager_secret.collector_config.id
  secret_data = file("${path.module}/../monitoring/run-gmp-config.yaml")
}
