terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }
  # State in a GCS bucket of the platform team's: terraform init -backend-config=bucket=NAME
  backend "gcs" {
    prefix = "tollgate"
  }
}

provider "google" {
  project = var.project
  region  = var.region
  # APIs that bill a quota project (Billing Budgets among them) bill this one, also when
  # an operator runs Terraform with their own user credentials.
  billing_project       = var.project
  user_project_override = true
}

data "google_project" "this" {
  project_id = var.project
}
