# The front door (optional, var.gateway): nginx with the Tollgate recipe as a Cloud Run
# service (deploy/gateways/nginx), behind an external HTTPS load balancer with a Google-
# managed certificate and Cloud Armor throttling each client address. Every API request
# is asked of the function the gateway asks (load_balancer = "gateway": auth-validator),
# then proxied to the API service; functions that serve browsers themselves
# (load_balancer = "host": account-api) get host names of their own on the same load
# balancer. Without var.gateway nothing here exists: bring your own gateway
# (docs/gateway.md) and grant it var.gateway_invokers.
#
# nginx cannot mint Google ID tokens, so the services behind the load balancer take no
# IAM check on invocation (invoker_iam_disabled in services.tf) and rely on their ingress
# instead: internal traffic and this load balancer only. The gateway reaches the validator
# through the VPC (Direct VPC egress, all traffic), which counts as internal; the
# subnetwork needs Private Google Access.
locals {
  gateway_enabled = var.gateway != null
  # The function the gateway asks about every request, and those with host names.
  gateway_validator = one([for name, f in var.functions : name if f.load_balancer == "gateway"])
  gateway_hosts     = local.gateway_enabled ? { for name, host in var.gateway.hosts : name => host if try(var.functions[name].load_balancer, null) == "host" } : {}
}

resource "google_service_account" "gateway" {
  count        = local.gateway_enabled ? 1 : 0
  account_id   = "tollgate-gateway"
  display_name = "Tollgate: the API gateway (nginx)"
}

resource "google_cloud_run_v2_service" "gateway" {
  count                = local.gateway_enabled ? 1 : 0
  name                 = "tollgate-gateway"
  location             = var.region
  ingress              = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  invoker_iam_disabled = true
  deletion_protection  = false
  labels               = { tollgate-function = "gateway" }

  template {
    service_account                  = google_service_account.gateway[0].email
    max_instance_request_concurrency = 250
    timeout                          = "60s"
    scaling {
      min_instance_count = 0
      max_instance_count = var.gateway.max_instances
    }
    # The validator's run.app URL through the VPC: internal, as its ingress requires.
    vpc_access {
      egress = "ALL_TRAFFIC"
      network_interfaces {
        network    = var.gateway.network
        subnetwork = var.gateway.subnetwork
      }
    }
    containers {
      image = "${local.image_registry}/gateway:${var.image_tag}"
      ports {
        container_port = 8080
      }
      resources {
        limits            = { cpu = "1", memory = "256Mi" }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }
      env {
        name  = "TOLLGATE_VALIDATOR_URL"
        value = local.service_url[local.gateway_validator]
      }
      env {
        name  = "TOLLGATE_UPSTREAM_URL"
        value = var.gateway.upstream_url
      }
      startup_probe {
        tcp_socket {
          port = 8080
        }
        period_seconds    = 1
        failure_threshold = 10
      }
    }
  }
  depends_on = [google_project_service.api]
}

# Cloud Armor: each client address is throttled past the configured rate (429), before
# any request reaches the gateway; everything else is allowed.
resource "google_compute_security_policy" "gateway" {
  #checkov:skip=CKV_GCP_73:Log4j rules protect Java servers; none runs behind this load balancer.
  count       = local.gateway_enabled ? 1 : 0
  name        = "tollgate-gateway"
  description = "Tollgate's front door: a request rate per client address."
  rule {
    action   = "throttle"
    priority = 1000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = var.gateway.requests_per_minute_per_ip
        interval_sec = 60
      }
    }
    description = "At most requests_per_minute_per_ip from one address."
  }
  rule {
    action   = "allow"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    description = "Everything else."
  }
  depends_on = [google_project_service.api]
}

# One serverless network endpoint group and backend per service behind the load balancer.
locals {
  gateway_backends = local.gateway_enabled ? merge(
    { gateway = google_cloud_run_v2_service.gateway[0].name },
    { for name, host in local.gateway_hosts : name => google_cloud_run_v2_service.function[name].name },
  ) : {}
}

resource "google_compute_region_network_endpoint_group" "gateway" {
  for_each              = local.gateway_backends
  name                  = "tollgate-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = each.value
  }
}

resource "google_compute_backend_service" "gateway" {
  for_each              = local.gateway_backends
  name                  = "tollgate-${each.key}"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.gateway[0].id
  backend {
    group = google_compute_region_network_endpoint_group.gateway[each.key].id
  }
  log_config {
    enable      = true
    sample_rate = 0.1
  }
}

resource "google_compute_url_map" "gateway" {
  count           = local.gateway_enabled ? 1 : 0
  name            = "tollgate-gateway"
  default_service = google_compute_backend_service.gateway["gateway"].id
  dynamic "host_rule" {
    for_each = local.gateway_hosts
    content {
      hosts        = [host_rule.value]
      path_matcher = host_rule.key
    }
  }
  dynamic "path_matcher" {
    for_each = local.gateway_hosts
    content {
      name            = path_matcher.key
      default_service = google_compute_backend_service.gateway[path_matcher.key].id
    }
  }
}

resource "google_compute_managed_ssl_certificate" "gateway" {
  count = local.gateway_enabled ? 1 : 0
  name  = "tollgate-gateway"
  managed {
    domains = concat([var.gateway.domain], values(local.gateway_hosts))
  }
}

resource "google_compute_ssl_policy" "gateway" {
  count           = local.gateway_enabled ? 1 : 0
  name            = "tollgate-gateway"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "gateway" {
  count            = local.gateway_enabled ? 1 : 0
  name             = "tollgate-gateway"
  url_map          = google_compute_url_map.gateway[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.gateway[0].id]
  ssl_policy       = google_compute_ssl_policy.gateway[0].id
}

resource "google_compute_global_address" "gateway" {
  count = local.gateway_enabled ? 1 : 0
  name  = "tollgate-gateway"
}

resource "google_compute_global_forwarding_rule" "gateway" {
  count                 = local.gateway_enabled ? 1 : 0
  name                  = "tollgate-gateway"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.gateway[0].id
  port_range            = "443"
  target                = google_compute_target_https_proxy.gateway[0].id
}
