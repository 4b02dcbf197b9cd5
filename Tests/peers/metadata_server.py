"""A stand-in for the GCE/Cloud Run metadata server, on loopback, for the credential tests.

Serves the default service account's token, identity and email endpoints; refuses any
request without `Metadata-Flavor: Google` (403), as the real server does; counts the
fetches at /__counts. Token fetches take 200 ms so concurrent callers overlap.
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PREFIX = "/computeMetadata/v1/instance/service-accounts/default"
counts = {"token": 0, "identity": 0, "email": 0, "refused": 0}
lock = threading.Lock()


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/__counts":
            return self.answer(200, json.dumps(counts))
        if self.headers.get("Metadata-Flavor") != "Google":
            with lock:
                counts["refused"] += 1
            return self.answer(403, "Missing Metadata-Flavor:Google header.", "text/html")
        if url.path == PREFIX + "/token":
            time.sleep(0.2)
            with lock:
                counts["token"] += 1
                n = counts["token"]
            return self.answer(200, json.dumps({"access_token": f"ya29.stand-in-{n}", "expires_in": 3599, "token_type": "Bearer"}))
        if url.path == PREFIX + "/identity":
            audience = parse_qs(url.query).get("audience", [""])[0]
            with lock:
                counts["identity"] += 1
            claims = {"aud": audience, "iss": "https://accounts.google.com", "exp": 4102444800, "email": "svc@p.iam.gserviceaccount.com"}
            return self.answer(200, b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".c2ln", "text/html")
        if url.path == PREFIX + "/email":
            with lock:
                counts["email"] += 1
            return self.answer(200, "svc@p.iam.gserviceaccount.com", "text/html")
        self.answer(404, "not found", "text/html")


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.serve_forever()
