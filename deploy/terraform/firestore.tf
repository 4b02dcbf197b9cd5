# The document store: Firestore in native mode with pessimistic concurrency (the
# transactions' semantics the functions rely on), point-in-time recovery, and
# protection from deletion.
resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"
  depends_on                        = [google_project_service.api]
}

# Every query the functions make but one is a range on one field, ordered by it, which
# Firestore's automatic single-field indexes serve. The one: an account's ledger entries
# of a day (usage-export's signed receipts), equality on accountId and a range on recorded.
resource "google_firestore_index" "usage_by_account" {
  database    = google_firestore_database.default.name
  collection  = "usage"
  query_scope = "COLLECTION"
  fields {
    field_path = "accountId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "recorded"
    order      = "ASCENDING"
  }
}

# What they must not do is index a large value nobody queries: a dead letter's raw
# body (up to the 1 MiB document limit) is exempted.
resource "google_firestore_field" "dead_letter_body" {
  database   = google_firestore_database.default.name
  collection = "deadLetters"
  field      = "body"
  index_config {}
}
