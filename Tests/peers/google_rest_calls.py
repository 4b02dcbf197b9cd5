"""Calls a local cloud with Google's own REST client (google-api-python-client, from its
bundled discovery documents), as a developer's script pointed at `tollgate serve` would.

Reads {"endpoint": "http://127.0.0.1:PORT/", "calls": [...]} on stdin, each call one of
  {"publish": "projects/P/topics/T", "messages": [{"data": base64, "attributes": {...}}]}
  {"run": "projects/P/locations/L/jobs/J"}
and writes {"answers": [...]}: the decoded JSON answer, or {"status": N, "error": {...}}
when the call was refused.
"""

import json
import sys

from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

request = json.load(sys.stdin)
options = {"api_endpoint": request["endpoint"]}
pubsub = build("pubsub", "v1", credentials=AnonymousCredentials(), client_options=options, static_discovery=True)
scheduler = build("cloudscheduler", "v1", credentials=AnonymousCredentials(), client_options=options, static_discovery=True)

answers = []
for call in request["calls"]:
    if "publish" in call:
        method = pubsub.projects().topics().publish(topic=call["publish"], body={"messages": call["messages"]})
    else:
        method = scheduler.projects().locations().jobs().run(name=call["run"], body={})
    try:
        answers.append(method.execute(num_retries=0))
    except HttpError as error:
        answers.append({"status": error.resp.status, "error": json.loads(error.content or b"{}").get("error")})
json.dump({"answers": answers}, sys.stdout)
