output "service_urls" {
  description = "Each function's URL (Stripe's webhook endpoint is stripe-webhook's; Clerk's is clerk-webhook's)."
  value       = local.service_url
}

output "image_registry" {
  description = "Where Cloud Build pushes the images."
  value       = local.image_registry
}

output "secrets_to_fill" {
  description = "Secret Manager secrets that need a version before the functions start."
  value       = sort(tolist(local.secret_ids))
}

output "gateway_address" {
  description = "The load balancer's IP address: point the gateway's domain (and its hosts) at it; the certificate is issued once DNS resolves."
  value       = local.gateway_enabled ? google_compute_global_address.gateway[0].address : null
}
