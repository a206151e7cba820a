"""Browser apps call these APIs from their own pages (the original demo calls HeyGen from
the browser), so the stand-ins answer CORS preflights and send the headers a public API
sends: any origin, no cookies, the key in a header."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

BROWSER_CLIENTS = [Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                              allow_headers=["*"], max_age=600)]
