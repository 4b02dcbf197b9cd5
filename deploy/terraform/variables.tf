# The platform team's settings. The per-function part (var.functions, var.queues,
# var.topics, var.push_retry) is rendered from the code by `tollgate deploy render`
# into functions.auto.tfvars.json; never edit that file by hand.

variable "project" {
  description = "The Google Cloud project id."
  type        = string
}

variable "region" {
  description = "The region of every regional resource (Cloud Run, Scheduler, Tasks, the registry)."
  type        = string
  default     = "europe-west1"
}

variable "image_tag" {
  description = "The images' tag: the commit SHA Cloud Build built them from."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-f]{7,40}$", var.image_tag))
    error_message = "image_tag is a commit SHA; mutable tags such as latest are never deployed."
  }
}

variable "price_tiers" {
  description = "Which Stripe price is which tier, for stripe-webhook: price_A=pro,price_B=enterprise."
  type        = string
}

variable "gateway" {
  description = "The front door (gateway.tf): nginx with the Tollgate recipe on Cloud Run, behind an external HTTPS load balancer with Cloud Armor. null: none (bring your own gateway and list its accounts in gateway_invokers)."
  type = object({
    domain                     = string                    # the API's host name: point its DNS at output gateway_address
    upstream_url               = string                    # the API service admitted requests go to (https://…)
    network                    = string                    # the VPC the gateway reaches auth-validator through
    subnetwork                 = string                    # with Private Google Access on
    hosts                      = optional(map(string), {}) # host names of functions that serve browsers: { "account-api" = "account.example.com" }
    requests_per_minute_per_ip = optional(number, 1200)    # Cloud Armor answers 429 past this, per client address
    max_instances              = optional(number, 20)
  })
  default = null
  validation {
    condition     = var.gateway == null || can(regex("^https://[^/]+", var.gateway.upstream_url))
    error_message = "gateway.upstream_url is the API service's https:// URL."
  }
}

variable "gateway_invokers" {
  description = "Service accounts of the API gateway allowed to call auth-validator (through the load balancer)."
  type        = list(string)
  default     = []
}

variable "clerk_issuer" {
  description = "The Clerk instance's frontend API URL (https://clerk.your-domain.com or https://NAME.clerk.accounts.dev): the issuer of session tokens account-api and auth-validator accept."
  type        = string
  validation {
    condition     = can(regex("^https://[^/]+$", var.clerk_issuer))
    error_message = "clerk_issuer is the Clerk frontend API URL: https:// and a host, no path."
  }
}

variable "dashboard_origins" {
  description = "The origins of the dashboard that calls account-api from the browser (CORS) and whose Clerk sessions carry them as azp: [\"https://app.example.com\"]."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for origin in var.dashboard_origins : can(regex("^https?://[^/]+$", origin))])
    error_message = "Each dashboard origin is a scheme and a host, with no path: https://app.example.com."
  }
}

variable "settings" {
  description = "Further environment per function (TOLLGATE_ENDPOINT_FEATURES, TOLLGATE_ENDPOINT_COSTS, retention days, ...); docs/settings.md lists them."
  type        = map(map(string))
  default     = {}
}

variable "firestore_location" {
  description = "The Firestore database's location (a region or a multi-region such as eur3)."
  type        = string
  default     = "eur3"
}

variable "usage_bucket_location" {
  description = "The usage export bucket's location."
  type        = string
  default     = "EU"
}

variable "export_retention_days" {
  description = "Days an export object cannot be deleted or replaced (the bucket's retention policy); cleanup deletes them after TOLLGATE_RETENTION_EXPORT_DAYS, which must not be shorter."
  type        = number
  default     = 2555
}

variable "lock_export_retention" {
  description = "Lock the retention policy: irreversible, the bucket cannot be deleted until every object has aged out."
  type        = bool
  default     = false
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (ids) for alerts and budget updates."
  type        = list(string)
  default     = []
}

variable "error_rate_threshold" {
  description = "The share of a function's deliveries answered 5xx (other than 503 asking for a retry) that raises an alert."
  type        = number
  default     = 0.05
}

variable "slo_availability" {
  description = "The share of each function's deliveries that must not fail (a 500, or a bug's 5xx), over 30 days; its error budget's burn rate alerts fast and slow."
  type        = number
  default     = 0.999
  validation {
    condition     = var.slo_availability > 0.9 && var.slo_availability < 1
    error_message = "slo_availability is a share between 0.9 and 1, such as 0.999."
  }
}

variable "slo_latency_seconds" {
  description = "The latency SLO's threshold: one of the functions' histogram buckets (0.1, 0.25, 0.5, 1, 2.5 seconds)."
  type        = number
  default     = 0.5
  validation {
    condition     = contains([0.1, 0.25, 0.5, 1, 2.5], var.slo_latency_seconds)
    error_message = "slo_latency_seconds must be a bucket of tollgate_request_duration_seconds: 0.1, 0.25, 0.5, 1 or 2.5."
  }
}

variable "slo_latency_share" {
  description = "The share of each function's deliveries that must finish within slo_latency_seconds."
  type        = number
  default     = 0.95
  validation {
    condition     = var.slo_latency_share > 0.5 && var.slo_latency_share < 1
    error_message = "slo_latency_share is a share between 0.5 and 1, such as 0.95."
  }
}

variable "latency_p95_seconds" {
  description = "p95 latency above which a function alerts, by function; 80% of its request deadline when unset."
  type        = map(number)
  default     = {}
}

variable "billing_account" {
  description = "The billing account for the budget; no budget when null."
  type        = string
  default     = null
}

variable "monthly_budget" {
  description = "The monthly budget, in budget_currency."
  type        = number
  default     = 200
}

variable "budget_currency" {
  description = "The budget's currency (the billing account's)."
  type        = string
  default     = "EUR"
}

variable "gmp_sidecar_image" {
  description = "Google Managed Prometheus' collector for Cloud Run, pinned."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.1.1"
}

variable "functions" {
  description = "Rendered by tollgate deploy render: each function's trigger, secrets, ports and resources."
  type = map(object({
    trigger               = string
    authenticated         = bool
    env                   = map(string)
    secrets               = map(string)
    publishes             = list(string)
    subscriptions         = list(object({ topic = string, path = string }))
    cpu                   = string
    memory                = string
    concurrency           = number
    max_instances         = number
    timeout_seconds       = number
    ingress               = string
    load_balancer         = optional(string)
    blob_roles            = list(string)
    signs_links           = bool
    quota_in_memorystore  = bool
    topic                 = string
    max_delivery_attempts = number
    ack_deadline_seconds  = number
    job                   = string
    schedule              = string
    time_zone             = string
    queue                 = string
  }))
}

variable "queues" {
  description = "Rendered: each Cloud Tasks queue's target, RetryConfig and RateLimits."
  type = map(object({
    target                    = string
    max_attempts              = number
    min_backoff               = string
    max_backoff               = string
    max_doublings             = number
    max_retry_duration        = string
    max_dispatches_per_second = number
    max_concurrent_dispatches = number
  }))
}

variable "topics" {
  description = "Rendered: the Pub/Sub topics."
  type        = list(string)
}

variable "push_retry" {
  description = "Rendered: the push subscriptions' RetryPolicy."
  type        = object({ minimum_backoff = string, maximum_backoff = string })
}

variable "cpu_always_allocated" {
  description = "Instance-based billing: CPU stays allocated between requests, so the metrics collector never misses a scrape. Off: request-based billing, cheapest for services that scale to zero; a few scrapes of idle instances may fail."
  type        = bool
  default     = false
}
