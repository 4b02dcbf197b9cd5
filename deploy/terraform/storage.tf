# The usage exports: write-once objects, never public, versioned, held by a retention
# policy (lockable), cooled down as they age. Access is logged to a second bucket.
resource "google_storage_bucket" "usage" {
  name                        = "${var.project}-tollgate-usage"
  location                    = var.usage_bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  retention_policy {
    retention_period = var.export_retention_days * 86400
    is_locked        = var.lock_export_retention
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log bucket itself; logging its own access would recurse.
  name                        = "${var.project}-tollgate-access-logs"
  location                    = var.usage_bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
}
