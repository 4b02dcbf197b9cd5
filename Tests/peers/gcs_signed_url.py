"""A V4 signed URL made by Google's own Cloud Storage library, for comparison.

Reads {"key": service-account key info, "bucket", "object", "expiration" (seconds),
"timestamp" ("YYYYMMDDTHHMMSSZ")} on stdin; writes {"url": ...}.
"""

import json
import sys
from urllib.parse import quote

from google.cloud.storage import _signing
from google.oauth2 import service_account

request = json.load(sys.stdin)
credentials = service_account.Credentials.from_service_account_info(request["key"])
# As Blob.generate_signed_url builds it.
resource = "/" + request["bucket"] + "/" + quote(request["object"].encode("utf-8"), safe=b"/~")
url = _signing.generate_signed_url_v4(
    credentials, resource, expiration=request["expiration"], _request_timestamp=request["timestamp"]
)
json.dump({"url": url}, sys.stdout)
