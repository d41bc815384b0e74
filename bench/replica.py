"""`python -m bench.replica --port N`: the HTTP server as `person-enrich-mcp --transport http` serves it, with its
state store wrapped in `CountingStore` and the counts at `GET /_bench/store-calls`.

The app is the real one (`build_http_app`, same settings from the environment, same uvicorn configuration); the
only differences are the wrapper around the store and the extra route. Bench-only: nothing in the package imports
this, and a production server has neither.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.counting_store import CountingStore
from person_enrich_mcp.cli import configure_logging
from person_enrich_mcp.http_app import build_http_app, uvicorn_config
from person_enrich_mcp.http_guards import bind
from person_enrich_mcp.settings import load_settings
from person_enrich_mcp.state import open_store

COUNTS_PATH = "/_bench/store-calls"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replica", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure_logging(0)
    settings = load_settings()
    store = CountingStore(open_store(settings.state_url))
    app = build_http_app(settings, port=args.port, store=store)

    async def counts(_: Request) -> Response:
        return JSONResponse(dict(store.calls))

    app.router.routes.append(Route(COUNTS_PATH, counts, methods=["GET"]))
    uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[bind("127.0.0.1", args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
