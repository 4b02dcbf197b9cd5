#!/usr/bin/env bash
# Checks the Clerk instance Tollgate signs people in with, and prints the one step the
# Clerk Dashboard must do by hand (Clerk's webhook endpoints are made in its Dashboard,
# through Svix; the Backend API makes none):
#
#   deploy/setup/clerk.sh --project PROJECT --issuer https://clerk.example.com [--region REGION] [--dry-run]
#
#  1. the issuer's JWKS (<issuer>/.well-known/jwks.json, where account-api and
#     auth-validator fetch it) holds an RS256 key to verify session tokens with;
#  2. the webhook endpoint to add (clerk-webhook's URL and exactly the events it acts
#     on), and how its signing secret reaches Secret Manager (tollgate-clerk-webhook-secret).
#
# Session tokens need no JWT template: the default token carries what Tollgate reads
# (sub, sid, iss, azp, exp, nbf, iat). --dry-run prints every call and makes none.
# Needs curl, python3 and gcloud.
set -euo pipefail

project="" region="europe-west1" issuer="" dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --project) project="$2"; shift 2 ;;
        --region) region="$2"; shift 2 ;;
        --issuer) issuer="${2%/}"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        *) echo "clerk setup: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$project" ] || { echo "clerk setup: --project PROJECT is required" >&2; exit 2; }
[[ "$issuer" =~ ^https://[^/]+$ ]] || {
    echo "clerk setup: --issuer is Clerk's frontend API URL (https:// and a host; clerk_issuer in the tfvars)" >&2
    exit 2
}
# What clerk-webhook acts on (ClerkEvent's user, organization and membership types).
events=(
    user.created user.updated user.deleted organization.created organization.updated organization.deleted
    organizationMembership.created organizationMembership.updated organizationMembership.deleted
)

# get URL: prints the call, then makes it unless this is a dry run.
get() {
    printf '+ curl -sS --fail %q\n' "$1" >&2
    if $dry_run; then echo '{}'; else curl -sS --fail "$1"; fi
}

echo "== 1. The issuer" >&2
keys=$(get "$issuer/.well-known/jwks.json")
if ! $dry_run; then
    python3 -c 'import json, sys
keys, issuer = json.loads(sys.argv[1]), sys.argv[2]
if not any(key.get("kty") == "RSA" and key.get("alg", "RS256") == "RS256" for key in keys.get("keys", [])):
    sys.exit(f"clerk setup: {issuer}/.well-known/jwks.json holds no RS256 key")' "$keys" "$issuer"
    echo "   $issuer signs session tokens with RS256 keys" >&2
fi

if $dry_run; then
    number="PROJECT_NUMBER"
else
    number=$(gcloud projects describe "$project" --format='value(projectNumber)')
fi
cat >&2 <<EOF
== 2. By hand, in the Clerk Dashboard → Webhooks → Add Endpoint
- Endpoint URL: https://clerk-webhook-$number.$region.run.app/
- Subscribe to exactly: ${events[*]}
- Then copy the endpoint's Signing Secret (whsec_…) and add it on standard input:
    gcloud secrets versions add tollgate-clerk-webhook-secret --data-file=- --project $project
  While rotating it, add "whsec_new,whsec_old" as one version: clerk-webhook accepts either.
EOF
