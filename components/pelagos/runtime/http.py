"""The operations HTTP server: /metrics and /healthz on the metrics port.

- `GET /metrics`: the Prometheus text exposition of pelagos.observability's
  registry (Prometheus scrapes every Pelagos process here);
- `GET /healthz`: 200 with the JSON health of every component when all are
  healthy, 503 with the same JSON otherwise (while starting, stopping, or
  when a child server died), so Kubernetes probes and scripts can use it.

Invariants:
- the server is itself a Component: it listens from `start()` to `stop()`;
- it binds only the configured host and port; a taken port is a
  ServerProcessError naming the port, raised by `start()`;
- a health callback that raises answers 503, never 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web

from pelagos.errors import ServerProcessError
from pelagos.observability.metrics import REGISTRY, RoleMetrics, render
from pelagos.runtime.lifecycle import Health, LifecycleHealth

log = logging.getLogger(__name__)

_metrics = RoleMetrics("runtime")
_component_healthy = _metrics.gauge(
    "component_healthy", "1 when the component reported healthy at the last /healthz, else 0", ["component"]
)


class OpsHttpServer:
    """A Component serving /metrics and /healthz."""

    name = "http"

    def __init__(self, host: str, port: int, health: Callable[[], LifecycleHealth]) -> None:
        self.host = host
        self.port = port
        self._health = health
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ServerProcessError(
                f"the metrics/health port {self.host}:{self.port} is not available ({exc.strerror or exc}); "
                f"stop whatever listens there or set server.metrics_port / --metrics-port"
            ) from None
        self._runner = runner
        log.info("serving /metrics and /healthz on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def health(self) -> Health:
        return Health(self._runner is not None, self.url)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body, content_type = render(REGISTRY)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            health = self._health()
        except Exception as exc:
            log.warning("health callback failed: %s", exc)
            payload: dict[str, object] = {"ok": False, "error": str(exc), "components": {}}
            return web.json_response(payload, status=503)
        for name, h in health.components.items():
            _component_healthy.labels(component=name).set(1 if h.ok else 0)
        return web.json_response(health.as_json(), status=200 if health.ok else 503, dumps=json.dumps)
