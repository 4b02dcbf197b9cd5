# Optional: Memorystore for Redis holding auth-validator's leases of quota
# (TOLLGATE_QUOTA_STORE; docs/quota-leases.md, "Redis"), for accounts so hot that even one
# grant a second on their Firestore window is too slow or too costly. Off by default
# (var.memorystore = null): an instance is billed every hour whether requests come or
# not, so it ends scale-to-zero's promise of costing nothing when idle.
#
# auth-validator reaches it over Direct VPC egress (services.tf: no connector to pay
# for); the other functions stay off the VPC. Redis holds no record of its own: the
# Firestore window stays the source of truth, so persistence is off and a restart or
# failover only strands what Redis held (at most one block per account, about a second
# of its traffic).

variable "memorystore" {
  description = "Memorystore for Redis for auth-validator's quota leases, or null (the default) for leases in each instance's memory. tier: BASIC (one node; a restart empties it) or STANDARD_HA (a replica and automatic failover). network/subnetwork: the VPC and the subnet auth-validator's instances join (Direct VPC egress) in var.region."
  type = object({
    tier           = optional(string, "BASIC")
    memory_size_gb = optional(number, 1)
    network        = optional(string, "default")
    subnetwork     = optional(string, "default")
  })
  default = null
  validation {
    condition     = var.memorystore == null || contains(["BASIC", "STANDARD_HA"], try(var.memorystore.tier, ""))
    error_message = "memorystore.tier is BASIC or STANDARD_HA."
  }
}

locals {
  memorystore_enabled = var.memorystore != null
}

data "google_compute_network" "memorystore" {
  count = local.memorystore_enabled ? 1 : 0
  name  = var.memorystore.network
}

resource "google_redis_instance" "quota" {
  #checkov:skip=CKV_GCP_95:AUTH is not used: the instance has no public address and only auth-validator's subnet reaches it (Direct VPC egress); TollgateRedis does not send AUTH yet.
  #checkov:skip=CKV_GCP_97:In-transit TLS is not used, for the same reason; TollgateRedis speaks plain RESP on the private network.
  count              = local.memorystore_enabled ? 1 : 0
  name               = "tollgate-quota"
  region             = var.region
  tier               = var.memorystore.tier
  memory_size_gb     = var.memorystore.memory_size_gb
  redis_version      = "REDIS_7_0"
  authorized_network = data.google_compute_network.memorystore[0].id
  connect_mode       = "DIRECT_PEERING"
  display_name       = "Tollgate quota leases"
  labels             = { tollgate = "quota" }
  redis_configs = {
    # Evicting a lease's key would strand its units: refuse writes instead (auth-validator
    # then answers from its own in-memory leases).
    maxmemory-policy = "noeviction"
  }
  persistence_config {
    persistence_mode = "DISABLED"
  }
  depends_on = [google_project_service.api]
}
