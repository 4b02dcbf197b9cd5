"""An API service guarded by Tollgate: FastAPI middleware asks auth-validator about every
request, and each admitted request publishes one usage event with Google's own Pub/Sub
client. The same code runs against `tollgate serve` (PUBSUB_EMULATOR_HOST set) and in
Google Cloud (no emulator variable: Application Default Credentials).

Settings (environment):
  TOLLGATE_VALIDATOR_URL  auth-validator's base URL, e.g. http://127.0.0.1:8080/auth-validator
  GOOGLE_CLOUD_PROJECT    the project of the usage-events topic (tollgate-local locally)
  TOLLGATE_USAGE_TOPIC    the topic id, default usage-events
  TOLLGATE_VALIDATOR_AUDIENCE  in Google Cloud: auth-validator's URL, the audience of the
                          ID token the service presents (only the gateway's service
                          accounts may invoke the validator); unset locally
"""

import asyncio
import datetime
import json
import logging
import os
import uuid

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from google.cloud import pubsub_v1

VALIDATOR_URL = os.environ["TOLLGATE_VALIDATOR_URL"].rstrip("/")
PROJECT = os.environ.get("GOOGLE_CLOUD_PROJECT", "tollgate-local")
TOPIC = os.environ.get("TOLLGATE_USAGE_TOPIC", "usage-events")
AUDIENCE = os.environ.get("TOLLGATE_VALIDATOR_AUDIENCE")

# What each route costs, in quota units. The middleware sends the cost to the validator
# and the same number in the usage event, so what is admitted and what is billed agree.
COSTS = {"/v1/graphs": 1, "/v1/graphs/render": 5}
# Answered without asking Tollgate (the load balancer's health check).
OPEN_PATHS = {"/healthz"}
# The validator's headers the client is told: the quota and, on a refusal, why.
CLIENT_HEADERS = ("ratelimit-policy", "ratelimit", "retry-after", "x-tollgate-code")

log = logging.getLogger("api")
publisher = pubsub_v1.PublisherClient()
topic_path = publisher.topic_path(PROJECT, TOPIC)
# Fail closed, well inside any gateway's deadline: 1 s to connect, 2 s in all.
validator = httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0))

app = FastAPI(title="Graphs API (Tollgate example)")
identity = {"token": None, "expires": 0.0}


async def identity_token():
    """An ID token for the validator's audience, from the metadata server, kept until five
    minutes before its hour is up. It travels in X-Serverless-Authorization: Cloud Run
    checks and strips it, and leaves Authorization (a Clerk session token) to the validator."""
    now = asyncio.get_running_loop().time()
    if identity["token"] is None or now > identity["expires"]:
        request = google.auth.transport.requests.Request()
        identity["token"] = await asyncio.to_thread(google.oauth2.id_token.fetch_id_token, request, AUDIENCE)
        identity["expires"] = now + 55 * 60
    return identity["token"]


@app.middleware("http")
async def tollgate(request: Request, call_next):
    if request.url.path in OPEN_PATHS:
        return await call_next(request)
    cost = COSTS.get(request.url.path, 1)
    asked = {"X-Original-URI": request.url.path, "X-Tollgate-Cost": str(cost)}
    # Only the credential goes to the validator; a client's X-Tollgate-* headers never do.
    for name in ("x-api-key", "authorization"):
        if name in request.headers:
            asked[name] = request.headers[name]
    try:
        if AUDIENCE:
            asked["X-Serverless-Authorization"] = "Bearer " + await identity_token()
        verdict = await validator.request(request.method, VALIDATOR_URL + "/", headers=asked)
    except (httpx.HTTPError, google.auth.exceptions.GoogleAuthError) as error:
        log.warning("auth-validator unreachable: %s", type(error).__name__)
        return JSONResponse({"code": "UNAVAILABLE", "error": "try again shortly"}, status_code=503, headers={"Retry-After": "1"})
    told = {name: verdict.headers[name] for name in CLIENT_HEADERS if name in verdict.headers}
    if verdict.status_code != 200:
        body = verdict.json() if verdict.headers.get("content-type", "").startswith("application/json") else {}
        return JSONResponse({"code": body.get("code", "REFUSED"), "error": body.get("error")}, status_code=verdict.status_code, headers=told)

    # Handlers read who is calling from here, never from request headers.
    request.state.caller = verdict.json()
    # The request id is ours: a client-chosen id could make the ledger drop its events.
    request.state.request_id = "req_" + uuid.uuid4().hex
    response = await call_next(request)
    if response.status_code < 500:
        publish_usage(request, cost)
    response.headers.update(told)
    return response


def publish_usage(request: Request, units: int):
    caller = request.state.caller
    event = {
        "requestId": request.state.request_id,
        "accountId": caller["accountId"],
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "endpoint": request.url.path,
        "units": units,
    }
    if caller.get("keyId"):
        event["keyId"] = caller["keyId"]
    # Batched and retried by the client; the ledger keeps one entry per account and
    # request id, so a redelivered event is counted once.
    future = publisher.publish(topic_path, json.dumps(event).encode(), origin="graphs-api")
    future.add_done_callback(lambda done: done.exception() and log.error("usage event not published: %s", done.exception()))


@app.get("/healthz")
async def healthz():
    return {"ok": True}


@app.get("/v1/graphs")
async def graphs(request: Request):
    caller = request.state.caller
    return {"account": caller["accountId"], "tier": caller.get("tier"), "requestId": request.state.request_id, "graphs": []}


@app.post("/v1/graphs/render")
async def render(request: Request):
    return {"account": request.state.caller["accountId"], "requestId": request.state.request_id, "rendered": True}
