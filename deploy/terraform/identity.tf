# Each function runs as its own service account with only what its ports need.
resource "google_service_account" "function" {
  for_each     = var.functions
  account_id   = "tg-${each.key}"
  display_name = "Tollgate ${each.key}"
}

# The identities Google's senders sign their OIDC tokens as.
resource "google_service_account" "pubsub_push" {
  account_id   = "tollgate-pubsub-push"
  display_name = "Tollgate: Pub/Sub push to functions"
}

resource "google_service_account" "scheduler" {
  account_id   = "tollgate-scheduler"
  display_name = "Tollgate: Cloud Scheduler jobs"
}

resource "google_service_account" "tasks" {
  account_id   = "tollgate-tasks"
  display_name = "Tollgate: Cloud Tasks dispatch"
}

# Firestore has no narrower grant than the project.
resource "google_project_iam_member" "firestore_user" {
  for_each = var.functions
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The metrics collector beside each function writes to Managed Prometheus.
resource "google_project_iam_member" "metric_writer" {
  for_each = var.functions
  project  = var.project
  role     = "roles/monitoring.metricWriter"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each  = local.secret_access
  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_secret_manager_secret_iam_member" "collector_config" {
  for_each  = var.functions
  secret_id = google_secret_manager_secret.collector_config.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = merge([for name, f in var.functions : { for topic in f.publishes : "${name}/${topic}" => { function = name, topic = topic } }]...)
  topic    = google_pubsub_topic.topic[each.value.topic].id
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# Cloud Storage by what each function declares it does with the usage bucket
# (blob_roles: read; create and read, never overwrite or delete; read, list and delete).
locals {
  storage_grants = merge([
    for name, f in var.functions : { for role in f.blob_roles : "${name}/${role}" => { function = name, role = role } }
  ]...)
}

resource "google_storage_bucket_iam_member" "usage" {
  for_each = local.storage_grants
  bucket   = google_storage_bucket.usage.name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# A V4 signed URL is signed as the service account itself; on Cloud Run, with no key
# file, that is the IAM Credentials API's signBlob, which needs this role on itself.
resource "google_service_account_iam_member" "sign_links" {
  for_each           = { for name, f in var.functions : name => f if f.signs_links }
  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Enqueuing report tasks, and naming tollgate-tasks in their OIDC tokens.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = { for name, f in var.functions : name => f if contains(keys(f.env), "TOLLGATE_TASKS") }
  name     = google_cloud_tasks_queue.queue[one(keys(var.queues))].name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_service_account_iam_member" "tasks_act_as" {
  for_each           = { for name, f in var.functions : name => f if contains(keys(f.env), "TOLLGATE_TASKS") }
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Google's senders may invoke exactly the functions they deliver to.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = merge([
    for name, emails in local.invokers : { for email in emails : "${name}/${email}" => { function = name, email = email } }
  ]...)
  name     = google_cloud_run_v2_service.function[each.value.function].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value.email}"
}

# The API gateway calls auth-validator with its own identity.
resource "google_cloud_run_v2_service_iam_member" "gateway" {
  for_each = merge([
    for name, f in var.functions : { for email in var.gateway_invokers : "${name}/${email}" => { function = name, email = email } }
    if f.ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  ]...)
  name     = google_cloud_run_v2_service.function[each.value.function].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value.email}"
}

# Stripe and Svix (Clerk's webhooks) cannot present Google credentials: their webhooks are
# public and every request is authenticated by its signature instead (Stripe-Signature,
# svix-signature; refused with 400 before anything is read).
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = { for name, f in var.functions : name => f if f.trigger == "http" && f.ingress == "INGRESS_TRAFFIC_ALL" }
  name     = google_cloud_run_v2_service.function[each.key].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers" #checkov:skip=CKV_GCP_102:Stripe and Svix cannot present Google credentials; each webhook authenticates every request by its signature.
}
