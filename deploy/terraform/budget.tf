# A monthly budget for the project, alerting at half, 90% and all of it, and when the
# month's forecast passes it.
resource "google_billing_budget" "tollgate" {
  count           = var.billing_account == null ? 0 : 1
  billing_account = var.billing_account
  display_name    = "Tollgate ${var.project}"

  budget_filter {
    projects = ["projects/${local.project_number}"]
  }

  amount {
    specified_amount {
      currency_code = var.budget_currency
      units         = tostring(var.monthly_budget)
    }
  }

  threshold_rules {
    threshold_percent = 0.5
  }
  threshold_rules {
    threshold_percent = 0.9
  }
  threshold_rules {
    threshold_percent = 1.0
  }
  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = var.notification_channels
  }
}
