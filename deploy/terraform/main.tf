# Tollgate on Google Cloud: one Cloud Run service per function, each with its own
# service account, and the Pub/Sub, Scheduler, Tasks, Storage, Firestore and Secret
# Manager resources the functions' declarations name (functions.auto.tfvars.json).

locals {
  project_number = data.google_project.this.number
  # Cloud Run's deterministic URLs: known before the services exist, so services can
  # name each other (usage-export → usage-report) and OIDC audiences are stable.
  service_url    = { for name, f in var.functions : name => "https://${name}-${local.project_number}.${var.region}.run.app" }
  image_registry = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.tollgate.repository_id}"

  # Who calls each function with a Google-signed OIDC token.
  invokers = {
    for name, f in var.functions : name => concat(
      f.trigger == "pubsub" || length(f.subscriptions) > 0 ? [google_service_account.pubsub_push.email] : [],
      f.trigger == "scheduler" ? [google_service_account.scheduler.email] : [],
      f.trigger == "cloudtasks" ? [google_service_account.tasks.email] : [],
    )
  }

  # What fills each placeholder of the rendered environment (`tollgate deploy render`
  # writes whole environments; TerraformVariables.placeholders lists what they may hold).
  platform_values = {
    "{project}"           = var.project
    "{region}"            = var.region
    "{bucket}"            = google_storage_bucket.usage.name
    "{pubsub_invoker}"    = google_service_account.pubsub_push.email
    "{scheduler_invoker}" = google_service_account.scheduler.email
    "{tasks_invoker}"     = google_service_account.tasks.email
    "{price_tiers}"       = var.price_tiers
    "{clerk_issuer}"      = var.clerk_issuer
    "{dashboard_origins}" = join(",", var.dashboard_origins)
  }
  placeholders = merge(local.platform_values, { for name, url in local.service_url : "{url:${name}}" => url })

  # Each service's environment: the rendered one with its placeholders filled in (a value
  # is cut into placeholders and the text between them), Memorystore's address when it
  # is on, then the platform team's own settings. An empty value is left out (unset).
  environment = {
    for name, f in var.functions : name => {
      for key, value in merge(
        {
          for key, value in f.env : key => join("", [
            for part in regexall("\\{[a-z_:0-9-]+\\}|[^{]+|\\{", value) : lookup(local.placeholders, part, part)
          ])
        },
        # Leases held in Memorystore when it is enabled (memorystore.tf).
        f.quota_in_memorystore && var.memorystore != null ? {
          TOLLGATE_QUOTA_STORE = "redis://${google_redis_instance.quota[0].host}:${google_redis_instance.quota[0].port}"
        } : {},
        lookup(var.settings, name, {}),
      ) : key => value if value != ""
    }
  }

  # Every secret some function declares, by its Secret Manager id.
  secret_ids = toset(flatten([for f in var.functions : values(f.secrets)]))
  secret_access = merge([
    for name, f in var.functions : { for variable, id in f.secrets : "${name}/${id}" => { function = name, secret = id } }
  ]...)
}

resource "google_project_service" "api" {
  for_each = toset(concat([
    "artifactregistry.googleapis.com", "billingbudgets.googleapis.com", "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com", "cloudtasks.googleapis.com", "firestore.googleapis.com",
    "iamcredentials.googleapis.com", "monitoring.googleapis.com", "pubsub.googleapis.com", "run.googleapis.com",
    "secretmanager.googleapis.com",
    ], var.memorystore == null ? [] : ["compute.googleapis.com", "redis.googleapis.com"],
    var.gateway == null ? [] : ["compute.googleapis.com"],
  ))
  service            = each.key
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "tollgate" {
  #checkov:skip=CKV_GCP_84:The images hold only open-source-style binaries and no secrets; Google-managed encryption at rest. Where policy requires CMEK, set kms_key_name and grant the Artifact Registry agent the key.
  location      = var.region
  repository_id = "tollgate"
  format        = "DOCKER"
  description   = "Tollgate's function images, tagged with the commit they were built from."
  docker_config {
    # A tag names one build for ever: redeploying a SHA deploys the same bytes.
    immutable_tags = true
  }
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  depends_on = [google_project_service.api]
}
