"""Cross-checks Tollgate's Svix signatures against Svix's own library (PyPI `svix`).

Reads a JSON request on stdin: {"secret", "timestamp", "messages": [{"id", "payload",
"tollgate_headers": {...}}]} and prints {"svix_signatures": [...], "tollgate_accepted":
[...], "tampered_accepted": [...]}: the signature Svix's library makes for each message,
and whether Svix's library accepts the headers Tollgate made (as signed, and for a
tampered copy of the payload).
"""
import datetime
import json
import sys

import svix
from svix.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
signed_at = datetime.datetime.fromtimestamp(request["timestamp"], tz=datetime.timezone.utc)


def accepted(payload, headers):
    # Svix checks the timestamp against the system clock: the caller signs at the time now.
    try:
        webhook.verify(payload.encode(), headers)
        return True
    except WebhookVerificationError:
        return False


messages = request["messages"]
print(json.dumps({
    "svix_version": svix.__version__ if hasattr(svix, "__version__") else "",
    "svix_signatures": [webhook.sign(m["id"], signed_at, m["payload"]) for m in messages],
    "tollgate_accepted": [accepted(m["payload"], m["tollgate_headers"]) for m in messages],
    "tampered_accepted": [accepted(m["payload"] + " ", m["tollgate_headers"]) for m in messages],
}))
