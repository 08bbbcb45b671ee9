"""One WSGI application: the JSON API, the pages clients see, feeds, metrics, OpenAPI."""

from __future__ import annotations

import json

from daemon.metrics import CONTENT_TYPE, Metrics
from daemon.service import Service
from daemon.signing import Signer
from daemon.web import openapi
from daemon.web.api import SLOTS_PATH, Api
from daemon.web.csrf import OriginGuard
from daemon.web.feeds import Feeds
from daemon.web.http import App, Request, Response, Router
from daemon.web.pages import Pages
from daemon.web.ratelimit import limiter_for
from daemon.web.whatsapp import WhatsAppWebhook


def build_app(service: Service, signer: Signer, metrics: Metrics) -> App:
    router = Router()
    booking = service.config.booking
    # One budget per client address, whichever door it books through.
    limiter = limiter_for(
        service.store, booking.rate_limit, booking.rate_window, booking.refusal_limit
    )
    Api(service, signer, limiter=limiter).routes(router)
    pages = Pages(service, signer, limiter=limiter)
    pages.routes(router)
    Feeds(service).routes(router)
    WhatsAppWebhook(service).routes(router)
    public_url = service.config.server.public_url
    spec = json.dumps(openapi.document(public_url, service.policy), indent=1).encode()

    def serve_metrics(request: Request) -> Response:
        return Response(200, metrics.render(), [("Content-Type", CONTENT_TYPE)])

    def serve_openapi(request: Request) -> Response:
        return Response(200, spec, [("Content-Type", "application/json")])

    router.add("GET", "/metrics", serve_metrics)
    router.add("GET", "/api/v1/openapi.json", serve_openapi)

    def count(request: Request, status: int) -> None:
        metrics.inc("expediente_http_requests_total", status=f"{status // 100}xx")

    def at_once(method: str, path: str) -> bool:
        # The slot listing, the request the booking page and the API repeat most, when its
        # answer needs no rebuild and no database server (see Service.answers_at_once).
        return method == "GET" and path == SLOTS_PATH and service.answers_at_once()

    return App(
        router,
        on_request=count,
        error_page=pages.error_page,
        guard=OriginGuard(public_url),
        at_once=at_once,
    )
