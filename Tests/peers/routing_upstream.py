"""An API service behind the nginx recipe, as ASGI frameworks route: Starlette matches the
percent-decoded path (`/v1%2Fpriority` reaches `/v1/priority`). Each answer names the
route that handled the request and the X-Tollgate-* headers it received, so a test sees
which handler a gated request reached and what the gateway let through.

Run: python -m uvicorn routing_upstream:app --app-dir Tests/peers --port PORT
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def handler(name):
    async def answer(request: Request):
        tollgate = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-tollgate-")}
        return JSONResponse({"route": name, "path": request.url.path, "tollgate": tollgate})

    return answer


app = Starlette(
    routes=[
        Route("/healthz", handler("healthz")),
        Route("/v1/priority", handler("priority"), methods=["GET", "POST"]),
        Route("/v1/bulk", handler("bulk"), methods=["GET", "POST"]),
        Route("/v1/bulk/{rest:path}", handler("bulk"), methods=["GET", "POST"]),
        Route("/v1/{rest:path}", handler("other"), methods=["GET", "POST"]),
    ]
)
