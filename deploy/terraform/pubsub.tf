# Topics, and a push subscription per function trigger or extra subscription, with OIDC
# authentication, the rendered RetryPolicy, and a dead-letter topic where the function
# declares maxDeliveryAttempts.
locals {
  push_subscriptions = merge(
    {
      for name, f in var.functions : "${name}-${f.topic}" => {
        function              = name, topic = f.topic, path = "/", ack_deadline_seconds = f.ack_deadline_seconds,
        max_delivery_attempts = f.max_delivery_attempts
      } if f.trigger == "pubsub"
    },
    merge([
      for name, f in var.functions : {
        for s in f.subscriptions : "${name}-${s.topic}" => {
          function = name, topic = s.topic, path = s.path, ack_deadline_seconds = 10, max_delivery_attempts = null
        }
      }
    ]...),
  )
  dead_lettered = { for name, s in local.push_subscriptions : name => s if s.max_delivery_attempts != null }
  pubsub_agent  = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "topic" {
  #checkov:skip=CKV_GCP_83:Usage events and entitlement changes carry no payment data or secrets; Google-managed encryption at rest. Where policy requires CMEK, set kms_key_name and grant the Pub/Sub agent the key.
  for_each                   = toset(var.topics)
  name                       = each.key
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Usage events and entitlement changes carry no payment data or secrets; Google-managed encryption at rest. Where policy requires CMEK, set kms_key_name and grant the Pub/Sub agent the key.
  for_each                   = local.dead_lettered
  name                       = "${each.key}-dead-letter"
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.api]
}

resource "google_pubsub_subscription" "push" {
  for_each             = local.push_subscriptions
  name                 = each.key
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = each.value.ack_deadline_seconds

  push_config {
    push_endpoint = "${local.service_url[each.value.function]}${each.value.path}"
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.service_url[each.value.function]
    }
  }

  retry_policy {
    minimum_backoff = var.push_retry.minimum_backoff
    maximum_backoff = var.push_retry.maximum_backoff
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.max_delivery_attempts == null ? [] : [each.value.max_delivery_attempts]
    content {
      dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
      max_delivery_attempts = dead_letter_policy.value
    }
  }

  expiration_policy {
    ttl = ""
  }
}

# A message published to a topic with no subscription is dropped: each dead-letter
# topic keeps its messages in a pull subscription for a person to inspect and replay.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each                   = local.dead_lettered
  name                       = "${each.key}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's own agent forwards dead letters: it publishes to the dead-letter topic and
# acknowledges on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_lettered
  topic    = google_pubsub_topic.dead_letter[each.key].id
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.dead_lettered
  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The agent mints the push identity's OIDC tokens.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
