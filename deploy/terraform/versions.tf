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
}

data "google_project" "this" {
  project_id = var.project
}
