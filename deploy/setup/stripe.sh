#!/usr/bin/env bash
# Sets up the Stripe account Tollgate bills through, once, and is safe to run again
# (each object is looked up before it is made, and every POST carries an idempotency key):
#
#   STRIPE_SECRET_KEY=sk_live_… deploy/setup/stripe.sh --project PROJECT [--region REGION]
#       --unit-amount-decimal CENTS [--currency eur] [--dry-run]
#
#  1. the Meter usage-report reports to: event name api_units (TOLLGATE_METER_EVENT_NAME),
#     the customer from payload key stripe_customer_id, the value from key value, summed;
#  2. a metered monthly price on it, CENTS (a decimal, 0.05 for half a cent) per unit,
#     lookup key tollgate_api_units: add it to your plans' subscriptions;
#  3. the webhook endpoint at stripe-webhook's URL, sending exactly the events it acts on,
#     with a pinned API version; its signing secret goes straight into Secret Manager
#     (tollgate-stripe-webhook-secret), never to the screen;
#  4. what to do by hand: the restricted key usage-report uses (the Stripe API cannot
#     make one) and the price ids of your tiers (price_tiers in the tfvars).
#
# STRIPE_SECRET_KEY is used for these calls only and reaches curl on its standard input,
# never a command line. --dry-run prints every call (the key as $STRIPE_SECRET_KEY) and
# makes none. Needs curl, python3 and gcloud.
set -euo pipefail

project="" region="europe-west1" unit_amount="" currency="eur" dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --project) project="$2"; shift 2 ;;
        --region) region="$2"; shift 2 ;;
        --unit-amount-decimal) unit_amount="$2"; shift 2 ;;
        --currency) currency="$2"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        *) echo "stripe setup: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$project" ] || { echo "stripe setup: --project PROJECT is required" >&2; exit 2; }
[[ "$unit_amount" =~ ^[0-9]+(\.[0-9]{1,12})?$ ]] || {
    echo "stripe setup: --unit-amount-decimal CENTS is required: the price of one unit in the currency's smallest unit (0.05)" >&2
    exit 2
}
$dry_run || [[ "${STRIPE_SECRET_KEY:-}" =~ ^(sk|rk)_(live|test)_ ]] || {
    echo "stripe setup: set STRIPE_SECRET_KEY to a secret key of the account (sk_live_… or sk_test_…)" >&2
    exit 2
}

api="${STRIPE_API_BASE:-https://api.stripe.com}"
# The payload shape stripe-webhook is sent, fixed here so that a change of the account's
# default version changes nothing (stripe-webhook reads this one and the ones before it).
api_version="2025-03-31.basil"
event_name="api_units"
lookup_key="tollgate_api_units"
# What stripe-webhook acts on (StripeEventApplier's subscription, invoice and link types).
events=(
    checkout.session.completed customer.created customer.updated
    customer.subscription.created customer.subscription.updated customer.subscription.deleted
    customer.subscription.trial_will_end invoice.payment_succeeded invoice.payment_failed
)

# stripe METHOD PATH IDEMPOTENCY-KEY [curl -d arguments…]: prints the call, then makes it
# (unless a dry run) and prints Stripe's JSON answer on stdout.
stripe() {
    local method="$1" path="$2" key="$3"
    shift 3
    # -g: Stripe's array parameters (lookup_keys[]) are not curl URL globs.
    local call=(curl -sS -g --fail-with-body -X "$method" "$api$path" -H "Stripe-Version: $api_version")
    [ -n "$key" ] && call+=(-H "Idempotency-Key: $key")
    # shellcheck disable=SC2016 # the key's name is printed, never its value
    printf '+ printf %%s "user = \\"$STRIPE_SECRET_KEY:\\"" |' >&2
    printf ' %q' "${call[@]}" -K - "$@" >&2
    printf '\n' >&2
    if $dry_run; then
        echo '{"data": []}'
    else
        printf 'user = "%s:"\n' "$STRIPE_SECRET_KEY" | "${call[@]}" -K - "$@"
    fi
}

# field JSON PATH…: a value of Stripe's answer (data[0].id, id, secret); empty when absent.
field() {
    python3 -c 'import json, sys
value = json.loads(sys.argv[1])
for step in sys.argv[2:]:
    if isinstance(value, list):
        value = value[int(step)] if int(step) < len(value) else None
    elif isinstance(value, dict):
        value = value.get(step)
    if value is None:
        break
print("" if value is None else value)' "$@"
}

if $dry_run; then
    number="PROJECT_NUMBER"
else
    number=$(gcloud projects describe "$project" --format='value(projectNumber)')
fi
webhook_url="https://stripe-webhook-$number.$region.run.app/"

echo "== 1. The meter ($event_name)" >&2
meters=$(stripe GET "/v1/billing/meters?status=active&limit=100" "")
meter=$(python3 -c 'import json, sys
print(next((m["id"] for m in json.loads(sys.argv[1])["data"] if m.get("event_name") == sys.argv[2]), ""))' "$meters" "$event_name")
if [ -z "$meter" ]; then
    created=$(stripe POST /v1/billing/meters "tollgate-setup-meter-$event_name" \
        -d display_name="API units" -d event_name="$event_name" -d "default_aggregation[formula]=sum" \
        -d "customer_mapping[type]=by_id" -d "customer_mapping[event_payload_key]=stripe_customer_id" \
        -d "value_settings[event_payload_key]=value")
    meter=$(field "$created" id)
    $dry_run && meter="mtr_FROM_STEP_1"
fi
echo "   meter $meter" >&2

echo "== 2. The metered price ($lookup_key)" >&2
prices=$(stripe GET "/v1/prices?lookup_keys[]=$lookup_key&active=true" "")
price=$(field "$prices" data 0 id)
if [ -z "$price" ]; then
    created=$(stripe POST /v1/prices "tollgate-setup-price-$lookup_key-$currency-$unit_amount" \
        -d currency="$currency" -d unit_amount_decimal="$unit_amount" -d "recurring[interval]=month" \
        -d "recurring[usage_type]=metered" -d "recurring[meter]=$meter" -d lookup_key="$lookup_key" \
        -d "product_data[name]=API usage")
    price=$(field "$created" id)
    $dry_run && price="price_FROM_STEP_2"
fi
echo "   price $price" >&2

echo "== 3. The webhook endpoint ($webhook_url)" >&2
endpoints=$(stripe GET "/v1/webhook_endpoints?limit=100" "")
endpoint=$(python3 -c 'import json, sys
print(next((e["id"] for e in json.loads(sys.argv[1])["data"] if e.get("url") == sys.argv[2]), ""))' "$endpoints" "$webhook_url")
if [ -z "$endpoint" ]; then
    arguments=(-d url="$webhook_url" -d api_version="$api_version" -d description="Tollgate stripe-webhook")
    for event in "${events[@]}"; do arguments+=(-d "enabled_events[]=$event"); done
    created=$(stripe POST /v1/webhook_endpoints "tollgate-setup-endpoint-$number-$region" "${arguments[@]}")
    printf '+ (the answer'"'"'s secret) | gcloud secrets versions add tollgate-stripe-webhook-secret --data-file=- --project %q\n' \
        "$project" >&2
    if ! $dry_run; then
        # Stripe shows an endpoint's secret only when it is made: straight into Secret Manager.
        field "$created" secret | tr -d '\n' |
            gcloud secrets versions add tollgate-stripe-webhook-secret --data-file=- --project "$project" >/dev/null
    fi
else
    echo "   endpoint $endpoint exists; its secret is already in tollgate-stripe-webhook-secret" >&2
fi

cat >&2 <<EOF
== 4. By hand
- The key usage-report reports with: Stripe Dashboard → Developers → API keys → Create
  restricted key, named tollgate-usage-report, with Write on "Meter events" (Billing)
  and nothing else. Then, pasting it on standard input (never on a command line):
    gcloud secrets versions add tollgate-stripe-api-key --data-file=- --project $project
- Your tiers: set price_tiers in deploy/terraform/production.tfvars to the price ids of
  your Pro and Enterprise plans (price_A=pro,price_B=enterprise), and add the metered
  price $price to their subscriptions.
EOF
