"""``bot.py health``: ask the running bot's /healthz (Docker's HEALTHCHECK runs it).

Standard library only, so the check starts fast and loads none of the pipeline.
"""

from __future__ import annotations

import http.client
import sys

from core.config import MetricsConfig

TIMEOUT = 5.0

# A server bound to every address is reached on loopback.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def probe(host: str, port: int, timeout: float = TIMEOUT) -> tuple[int, str]:
    """(status, body) of GET /healthz; raises OSError (refused, timed out) when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        conn.close()


def run_health(metrics: MetricsConfig, config_path: str, timeout: float = TIMEOUT) -> int:
    """Print /healthz's answer; 0 when it is 200, 1 otherwise (or when metrics are off)."""
    if metrics.host is None:
        print(
            f"error: the metrics endpoint is off: set metrics.listen in {config_path} (e.g. 127.0.0.1:9464)",
            file=sys.stderr,
        )
        return 1
    host = _LOOPBACK.get(metrics.host, metrics.host)
    where = f"http://{f'[{host}]' if ':' in host else host}:{metrics.port}/healthz"
    try:
        status, body = probe(host, metrics.port, timeout)
    except (OSError, http.client.HTTPException) as exc:
        print(f"unhealthy: no answer from {where}: {exc}", file=sys.stderr)
        return 1
    print(body)
    if status != 200:
        print(f"unhealthy: {where} answered {status}", file=sys.stderr)
        return 1
    return 0
