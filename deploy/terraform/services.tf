# One Cloud Run service per function: scales to zero, its own identity and resources,
# probes on /healthz, secrets from Secret Manager, ingress by who calls it, and
# Managed Prometheus' collector beside it scraping /metrics on the instance's loopback.
resource "google_cloud_run_v2_service" "function" {
  for_each            = var.functions
  name                = each.key
  location            = var.region
  ingress             = each.value.ingress
  deletion_protection = false
  # Behind Tollgate's own load balancer, a service is reached by nginx and the load
  # balancer, which present no Google identity: its ingress is the check (gateway.tf).
  invoker_iam_disabled = local.gateway_enabled && each.value.load_balancer != null
  labels               = { tollgate-function = each.key, tollgate-trigger = each.value.trigger }

  template {
    service_account                  = google_service_account.function[each.key].email
    timeout                          = "${each.value.timeout_seconds}s"
    max_instance_request_concurrency = each.value.concurrency
    labels                           = { tollgate-function = each.key }

    scaling {
      min_instance_count = 0
      max_instance_count = each.value.max_instances
    }

    # Direct VPC egress to Memorystore, for the functions that keep quota leases there
    # (auth-validator), when it is enabled (memorystore.tf); everything else still leaves
    # by Cloud Run's own egress.
    dynamic "vpc_access" {
      for_each = each.value.quota_in_memorystore && var.memorystore != null ? [var.memorystore] : []
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = vpc_access.value.network
          subnetwork = vpc_access.value.subnetwork
        }
      }
    }

    containers {
      name = "function"
      # The one image; Cloud Run sets K_SERVICE to the service name, which chooses the function.
      image = "${local.image_registry}/functions:${var.image_tag}"
      ports {
        container_port = 8080
      }
      resources {
        limits            = { cpu = each.value.cpu, memory = each.value.memory }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }
      dynamic "env" {
        for_each = local.environment[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = each.value.secrets
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.secret[env.value].secret_id
              version = "latest"
            }
          }
        }
      }
      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 1
        timeout_seconds   = 1
        failure_threshold = 10
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 30
        timeout_seconds   = 3
        failure_threshold = 3
      }
    }

    containers {
      name       = "collector"
      image      = var.gmp_sidecar_image
      depends_on = ["function"]
      resources {
        limits   = { cpu = "1", memory = "512Mi" }
        cpu_idle = !var.cpu_always_allocated
      }
      volume_mounts {
        name       = "collector-config"
        mount_path = "/etc/rungmp"
      }
    }

    volumes {
      name = "collector-config"
      secret {
        secret = google_secret_manager_secret.collector_config.secret_id
        items {
          version = "latest"
          path    = "config.yaml"
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.firestore_user,
    google_secret_manager_secret_iam_member.function,
    google_secret_manager_secret_iam_member.collector_config,
    google_secret_manager_secret_version.collector_config,
  ]
}
