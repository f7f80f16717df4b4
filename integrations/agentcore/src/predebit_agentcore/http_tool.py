"""The ``http_request`` tool PredebitPaymentsPlugin gives the agent in place of the SDK's.

The SDK's tool (``bedrock_agentcore/payments/integrations/strands/plugin.py``, ``http_request``)
sends every request through ``httpx.Client(follow_redirects=True)``, and httpx rebuilds a
redirected request with the same headers, dropping only ``Authorization`` (off the origin) and
``Cookie`` (``httpx/_client.py``, ``_redirect_headers``). Its result does not say which URL
answered. So a 402 could come from wherever an allow-listed URL redirects to, while predebit judged
the URL the agent asked for, and the paid retry carried ``X-PAYMENT`` / ``PAYMENT-SIGNATURE``
along the same redirect to the other origin.

This one is the same tool (same inputs, same result format) except that it follows a redirect only
within the origin (scheme, host and port) of the URL it was asked for. A redirect to any other
origin, ``http://`` to ``https://`` included, is not followed: the agent gets the 3xx (not a
402, so nothing is paid) and can request the new URL itself, which predebit then judges as its own.
Every result names the URL that answered, as ``url``, so the plugin judges that URL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

PAYMENT_REQUIRED_MARKER = "PAYMENT_REQUIRED: "
MAX_SAME_ORIGIN_REDIRECTS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}
CROSS_ORIGIN_NOTE = (
    "The server redirected to another origin (the location header); the redirect was not followed. "
    "Request that URL yourself if you mean to: a payment there is judged for that URL."
)
TOO_MANY_NOTE = f"More than {MAX_SAME_ORIGIN_REDIRECTS} redirects; the last one was not followed."


def origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    """A URL's origin as httpx reads it: scheme, host (lowercased, IDNA-encoded), port with defaults filled in.

    Raises ``httpx.InvalidURL`` for a URL httpx cannot parse.
    """
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS.get(parsed.scheme)
    return (parsed.scheme, parsed.host, port)


def same_origin(a: httpx.URL | str, b: httpx.URL | str) -> bool:
    """Whether two URLs share scheme, host and port (``http://h`` and ``https://h`` do not)."""
    return origin(a) == origin(b)


def _error(message: str, url: str) -> dict[str, Any]:
    return {"status": "error", "content": [{"text": json.dumps({"statusCode": 0, "error": message, "url": url})}]}


def http_request(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | str | None = None,
    *,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The tool's work: one request, same-origin redirects followed, the result in the SDK's format plus ``url``."""
    request_headers = dict(headers) if headers else {}
    method_upper = method.upper()
    content: dict[str, Any] = {}
    if body is not None and method_upper not in ("GET", "HEAD"):
        content = {"content": body} if isinstance(body, str) else {"json": body}
    note: str | None = None
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            first = client.build_request(method_upper, url, headers=request_headers, **content)
            response = client.send(first)
            redirects = 0
            # httpx builds the redirected request (method, body and headers as it would when following)
            # and hands it over as next_request instead of sending it; only same-origin ones are sent.
            while response.next_request is not None:
                if not same_origin(response.next_request.url, first.url):
                    note = CROSS_ORIGIN_NOTE
                    break
                if redirects >= MAX_SAME_ORIGIN_REDIRECTS:
                    note = TOO_MANY_NOTE
                    break
                redirects += 1
                response = client.send(response.next_request)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # The URL stays out of the log (it may carry a token in its query); the agent gets it back.
        logger.error("http_request failed: %s", type(exc).__name__)
        return _error(f"Request failed: {exc}", url)

    try:
        response_body: Any = response.json()
    except ValueError:
        response_body = {"text": response.text}
    payload: dict[str, Any] = {
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "body": response_body,
        "url": str(response.url),  # the URL that answered, which the plugin judges
    }
    if note is not None:
        payload["redirectNotFollowed"] = note
    if response.status_code == 402:
        return {"status": "success", "content": [{"text": PAYMENT_REQUIRED_MARKER + json.dumps(payload)}]}
    return {"status": "success", "content": [{"text": json.dumps(payload)}]}
