#!/usr/bin/env bash
# Takes a Google Cloud project from empty to a running Tollgate, in the one order that
# works, and is safe to run again (each step looks before it acts):
#
#   deploy/bootstrap.sh --project PROJECT --github OWNER/REPO [--region REGION]
#                       [--tfvars deploy/terraform/production.tfvars] [--dry-run]
#
#  1. the APIs the bootstrap itself needs (Terraform enables the rest);
#  2. the Terraform state bucket, PROJECT-tollgate-tfstate (versioned, uniform access);
#  3. the deployer service account Cloud Build runs as, with the roles in ROLES below;
#  4. terraform init; an existing Firestore (default) database is imported, not recreated;
#  5. the Artifact Registry repository and the secrets, alone (terraform apply -target);
#  6. each secret's first version: the key pepper, the checkout secret and the export
#     signing key are generated here; STRIPE_WEBHOOK_SECRET, STRIPE_API_KEY and
#     CLERK_WEBHOOK_SECRET are read from the environment, unless deploy/setup/stripe.sh
#     and deploy/setup/clerk.sh already added them;
#  7. the Cloud Build trigger on main, run once: it tests, builds and pushes the images,
#     then applies all of Terraform, so the services start on images that exist and
#     secrets that have versions.
#
# --dry-run prints every command instead of running it (the checks it would make too,
# taken as "absent"). Needs gcloud, terraform (>= 1.6), openssl, python3 and git,
# signed in (gcloud auth login and gcloud auth application-default login) as a project
# Owner, or someone holding the roles in ROLES plus roles/iam.serviceAccountAdmin and
# roles/resourcemanager.projectIamAdmin.
set -euo pipefail
cd "$(dirname "$0")/.."

project="" region="europe-west1" github="" tfvars="deploy/terraform/production.tfvars" dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --project) project="$2"; shift 2 ;;
        --region) region="$2"; shift 2 ;;
        --github) github="$2"; shift 2 ;;
        --tfvars) tfvars="$2"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        *) echo "bootstrap: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$project" ] || { echo "bootstrap: --project PROJECT is required" >&2; exit 2; }
[[ "$github" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || { echo "bootstrap: --github OWNER/REPO is required (the repository Cloud Build builds)" >&2; exit 2; }
[ -f "$tfvars" ] || { echo "bootstrap: $tfvars does not exist: copy deploy/terraform/production.tfvars.example and fill it in" >&2; exit 2; }
# Cloud Build reads the tfvars from the repository: a path in it, committed (it holds no secret).
case "$tfvars" in /* | ../*) echo "bootstrap: --tfvars must be a path inside the repository" >&2; exit 2 ;; esac
if ! git ls-files --error-unmatch "$tfvars" >/dev/null 2>&1; then
    echo "bootstrap: commit $tfvars and push it to main: the pipeline reads it from the repository" >&2
    $dry_run || exit 2
fi

state_bucket="$project-tollgate-tfstate"
deployer="tollgate-deployer@$project.iam.gserviceaccount.com"
# The images are tagged with the commit; a dry run outside a checkout shows a stand-in.
commit=$(git rev-parse HEAD 2>/dev/null) || { $dry_run && commit="COMMIT_SHA"; } || {
    echo "bootstrap: run it from a git checkout of the repository" >&2
    exit 2
}

# What the deployer (Cloud Build's identity) needs to apply deploy/terraform and push
# images; nothing at organization level. Budgets need roles/billing.costsManager on the
# billing account as well, which only its administrator can grant (printed below).
ROLES=(
    roles/artifactregistry.admin            # the repository, and pushing images to it
    roles/cloudscheduler.admin              # the scheduled jobs
    roles/cloudtasks.admin                  # the report queue
    roles/datastore.owner                   # the Firestore database, its index and field config
    roles/iam.serviceAccountAdmin           # the functions' and senders' service accounts
    roles/iam.serviceAccountUser            # deploying services that run as them
    roles/logging.logWriter                 # the build's own logs
    roles/monitoring.editor                 # alert policies
    roles/pubsub.admin                      # topics, push subscriptions, their IAM
    roles/resourcemanager.projectIamAdmin   # project-level grants (Firestore user, metric writer)
    roles/run.admin                         # the services and who may invoke them
    roles/secretmanager.admin               # the secrets (never their values) and their IAM
    roles/serviceusage.serviceUsageAdmin    # enabling the APIs Terraform lists
    roles/storage.admin                     # the usage bucket, its access logs and the state bucket
)
# Only when memorystore is set in the tfvars.
MEMORYSTORE_ROLES=(roles/redis.admin roles/compute.networkUser)
# Only when gateway is set: the load balancer, Cloud Armor, and the gateway's VPC egress.
GATEWAY_ROLES=(roles/compute.loadBalancerAdmin roles/compute.securityAdmin roles/compute.networkUser)

# Prints a command in a form a shell can run, then runs it unless this is a dry run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    $dry_run || "$@"
}

# A check whose answer decides a step: printed, and taken as "absent" in a dry run.
exists() {
    printf '? %s\n' "$*"
    $dry_run && return 1
    "$@" >/dev/null 2>&1
}

# The value of a secret, on stdin of `gcloud secrets versions add`; never on a command line.
add_secret_version() {  # add_secret_version SECRET_ID PRODUCER...
    local id="$1"
    shift
    printf '+'
    printf ' %q' "$@"
    printf ' | gcloud secrets versions add %q --data-file=- --project %q\n' "$id" "$project"
    $dry_run || "$@" | gcloud secrets versions add "$id" --data-file=- --project "$project" >/dev/null
}

terraform_vars=(-var-file="$PWD/$tfvars" -var="project=$project" -var="region=$region" -var="image_tag=$commit")

echo "== 1. APIs"
run gcloud services enable serviceusage.googleapis.com cloudresourcemanager.googleapis.com iam.googleapis.com \
    storage.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com secretmanager.googleapis.com \
    --project "$project"

echo "== 2. Terraform state bucket"
if ! exists gcloud storage buckets describe "gs://$state_bucket" --project "$project"; then
    run gcloud storage buckets create "gs://$state_bucket" --project "$project" --location "$region" \
        --uniform-bucket-level-access --public-access-prevention
fi
run gcloud storage buckets update "gs://$state_bucket" --versioning

echo "== 3. Deployer service account"
if ! exists gcloud iam service-accounts describe "$deployer" --project "$project"; then
    run gcloud iam service-accounts create tollgate-deployer --project "$project" \
        --display-name "Tollgate: Cloud Build deploys"
fi
roles=("${ROLES[@]}")
grep -Eq '^[[:space:]]*memorystore[[:space:]]*=' "$tfvars" && roles+=("${MEMORYSTORE_ROLES[@]}")
grep -Eq '^[[:space:]]*gateway[[:space:]]*=' "$tfvars" && roles+=("${GATEWAY_ROLES[@]}")
# roles/compute.networkUser twice when both are on is harmless: each binding is idempotent.
for role in "${roles[@]}"; do
    run gcloud projects add-iam-policy-binding "$project" --member "serviceAccount:$deployer" --role "$role" \
        --condition None --quiet
done
billing=$(sed -nE 's/^[[:space:]]*billing_account[[:space:]]*=[[:space:]]*"([^"]+)".*/\1/p' "$tfvars")
if [ -n "$billing" ]; then
    echo "   The budget needs, granted by the billing account's administrator:"
    echo "   gcloud billing accounts add-iam-policy-binding $billing --member serviceAccount:$deployer --role roles/billing.costsManager"
fi

echo "== 4. terraform init"
run terraform -chdir=deploy/terraform init -input=false -backend-config="bucket=$state_bucket"
if exists gcloud firestore databases describe --database="(default)" --project "$project" &&
    ! exists terraform -chdir=deploy/terraform state show google_firestore_database.default; then
    run terraform -chdir=deploy/terraform import -input=false "${terraform_vars[@]}" \
        google_firestore_database.default "projects/$project/databases/(default)"
fi

echo "== 5. Registry and secrets, before anything needs them"
run terraform -chdir=deploy/terraform apply -input=false -auto-approve "${terraform_vars[@]}" \
    -target=google_artifact_registry_repository.tollgate -target=google_secret_manager_secret.secret

echo "== 6. Each secret's first version"
# variable=secret-id for every secret a function declares (rendered from the code).
secrets=$(python3 -c 'import json, sys
functions = json.load(open("deploy/terraform/functions.auto.tfvars.json"))["functions"]
print("\n".join(sorted({f"{variable}={secret}" for f in functions.values() for variable, secret in f["secrets"].items()})))')
missing=()
for pair in $secrets; do
    variable="${pair%%=*}" id="${pair#*=}"
    if exists gcloud secrets versions describe latest --secret "$id" --project "$project"; then
        echo "   $id has a version"
        continue
    fi
    case "$variable" in
        TOLLGATE_KEY_PEPPER | TOLLGATE_CHECKOUT_SECRET)
            add_secret_version "$id" openssl rand -base64 48 ;;
        TOLLGATE_EXPORT_SIGNING_KEY)
            # An Ed25519 private key's 32-byte seed, base64: the last 32 bytes of its PKCS#8 DER.
            add_secret_version "$id" sh -c 'openssl genpkey -algorithm ed25519 -outform DER | tail -c 32 | base64' ;;
        *)
            if [ -n "${!variable:-}" ]; then
                add_secret_version "$id" printenv "$variable"
            else
                missing+=("$variable ($id)")
            fi ;;
    esac
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: these secrets have no version yet: ${missing[*]}." >&2
    echo "           deploy/setup/stripe.sh and deploy/setup/clerk.sh add or explain them (or set the variables); then run again." >&2
    $dry_run || exit 1
fi

echo "== 7. The pipeline on main: test, images, then all of Terraform"
if ! exists gcloud builds triggers describe tollgate-main --project "$project"; then
    run gcloud builds triggers create github --project "$project" --name tollgate-main \
        --repo-owner "${github%%/*}" --repo-name "${github#*/}" --branch-pattern '^main$' \
        --build-config deploy/cloudbuild.yaml \
        --service-account "projects/$project/serviceAccounts/$deployer" \
        --substitutions "_TF_STATE_BUCKET=$state_bucket,_REGION=$region,_TF_VARS=$tfvars"
fi
run gcloud builds triggers run tollgate-main --project "$project" --branch main
echo "bootstrap: the first build is running (gcloud builds list --project $project --ongoing);"
echo "           when it is done: terraform -chdir=deploy/terraform output service_urls"
