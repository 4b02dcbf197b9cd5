"""Cross-checks Tollgate's Stripe signatures against Stripe's own library.

Reads a JSON request on stdin: {"secret", "timestamp", "payloads": [...],
"tollgate_headers": [...]} and prints {"stripe_headers": [...], "tollgate_accepted":
[...], "tampered_accepted": [...]}: headers Stripe's library made for each payload, and
whether Stripe's library accepts the headers Tollgate made (for the payload as signed,
and for a tampered copy).
"""
import json
import sys

import stripe

request = json.load(sys.stdin)
secret, timestamp = request["secret"], request["timestamp"]
tolerance = 10**10  # the timestamps are fixed; the tolerance is tested on the Swift side


def accepted(payload, header):
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
        return True
    except stripe.SignatureVerificationError:
        return False


print(json.dumps({
    "stripe_version": stripe.VERSION,
    "stripe_headers": [stripe.WebhookSignature.generate_signature_header(p, secret, timestamp=timestamp) for p in request["payloads"]],
    "tollgate_accepted": [accepted(p, h) for p, h in zip(request["payloads"], request["tollgate_headers"])],
    "tampered_accepted": [accepted(p + " ", h) for p, h in zip(request["payloads"], request["tollgate_headers"])],
}))
