"""The peer a team would otherwise deploy: the same two functions on Google's Python
functions-framework (Flask under gunicorn), written plainly and fairly.

  stripe_webhook  verify the Stripe-Signature with Stripe's own library (`WebhookSignature`), then apply the
                  subscription to the account, record the event as seen and, when the
                  tier changed, an entitlements-changed message, in one SQLite transaction
  validate_key    hash the API key with the pepper (HMAC-SHA256), look it up, check the
                  account and consume X-Tollgate-Cost units of its monthly quota in one
                  SQLite transaction

State is one SQLite file in WAL mode (PEER_DB), as Tollgate's default store is.
GET /healthz answers 200 on both.
"""

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time

import functions_framework
import stripe

DB = os.environ.get("PEER_DB", "/tmp/peer.db")
PEPPER = os.environ.get("PEER_KEY_PEPPER", "").encode()
WEBHOOK_SECRET = os.environ.get("PEER_WEBHOOK_SECRET", "")
PRICE_TIERS = dict(item.split("=") for item in os.environ.get("PEER_PRICE_TIERS", "").split(",") if item)
QUOTAS = {"free": 1_000, "pro": 100_000, "enterprise": 9_000_000_000}

_local = threading.local()

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, tier TEXT, status TEXT, enabled INTEGER,
  monthly_quota INTEGER, customer TEXT, period_end INTEGER, last_event_created INTEGER);
CREATE TABLE IF NOT EXISTS stripe_events (id TEXT PRIMARY KEY, type TEXT, received REAL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS api_keys (hash TEXT PRIMARY KEY, account TEXT, expires REAL, revoked REAL);
CREATE TABLE IF NOT EXISTS quotas (account TEXT, period TEXT, used INTEGER, PRIMARY KEY (account, period));
"""


def db():
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(DB, timeout=10, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        _local.connection = connection
    return connection


def healthz(request):
    return ("ok\n", 200, {"Content-Type": "text/plain"}) if request.path == "/healthz" else None


@functions_framework.http
def stripe_webhook(request):
    if (answer := healthz(request)) is not None:
        return answer
    payload = request.get_data()
    try:
        # Stripe's own verification (HMAC-SHA256, constant-time, 300 s tolerance), then one parse.
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), request.headers.get("Stripe-Signature", ""), WEBHOOK_SECRET, 300)
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError):
        return ({"error": "bad signature"}, 400)
    subscription = event["data"]["object"]
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        if connection.execute("SELECT 1 FROM stripe_events WHERE id = ?", (event["id"],)).fetchone():
            connection.execute("COMMIT")
            return ({"duplicate": True}, 200)
        if event["type"].startswith("customer.subscription.") and subscription.get("object") == "subscription":
            item = subscription["items"]["data"][0]
            tier = PRICE_TIERS.get(item["price"]["id"], "free")
            account = (subscription.get("metadata") or {}).get("tollgate_account_id") or subscription["customer"]
            row = connection.execute("SELECT tier, last_event_created FROM accounts WHERE id = ?", (account,)).fetchone()
            if row is None or row[1] <= event["created"]:
                status = subscription["status"]
                enabled = status in ("active", "trialing", "past_due")
                connection.execute(
                    "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (account, tier, status, enabled, QUOTAS[tier], subscription["customer"], item.get("current_period_end"),
                     event["created"]),
                )
                if row is None or row[0] != tier:
                    connection.execute(
                        "INSERT INTO outbox (topic, data) VALUES (?, ?)",
                        ("entitlements-changed", json.dumps({"accountId": account, "tier": tier})),
                    )
        connection.execute("INSERT INTO stripe_events VALUES (?, ?, ?)", (event["id"], event["type"], time.time()))
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return ({"received": True}, 200)


@functions_framework.http
def validate_key(request):
    if (answer := healthz(request)) is not None:
        return answer
    try:
        cost = int(request.headers.get("X-Tollgate-Cost", "1"))
    except ValueError:
        return ({"code": "INVALID_ARGUMENT"}, 400)
    key = request.headers.get("X-API-Key", "")
    if not key:
        return ({"code": "NOT_FOUND"}, 401)
    digest = hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    now = time.time()
    period = time.strftime("%Y-%m", time.gmtime(now))
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute(
            "SELECT k.account, k.expires, k.revoked, a.tier, a.enabled, a.monthly_quota FROM api_keys k "
            "JOIN accounts a ON a.id = k.account WHERE k.hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            connection.execute("COMMIT")
            return ({"code": "NOT_FOUND"}, 401)
        account, expires, revoked, tier, enabled, limit = row
        if (expires and expires <= now) or (revoked and revoked <= now):
            connection.execute("COMMIT")
            return ({"code": "REVOKED"}, 401)
        if not enabled:
            connection.execute("COMMIT")
            return ({"code": "DISABLED"}, 403)
        used = connection.execute("SELECT used FROM quotas WHERE account = ? AND period = ?", (account, period)).fetchone()
        used = used[0] if used else 0
        admitted = used + cost <= limit
        if admitted and cost > 0:
            connection.execute(
                "INSERT INTO quotas VALUES (?, ?, ?) ON CONFLICT (account, period) DO UPDATE SET used = used + ?",
                (account, period, cost, cost),
            )
            used += cost
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    body = {"code": "VALID" if admitted else "USAGE_EXCEEDED", "accountId": account, "tier": tier,
            "quota": {"used": used, "limit": limit, "period": period}}
    return (body, 200 if admitted else 429)
