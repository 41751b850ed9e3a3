"""What every API endpoint shares at the door: the per-session limit, and plain words for refused files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import gradio as gr

log = logging.getLogger(__name__)

# Gradio's own refusals of file references, and what a visitor is told instead (its message names server
# paths: "Cannot move /srv/app/x.png to the gradio cache dir because it was not uploaded by a user").
_REFUSALS = {
    "was not uploaded by a user": "A file in this request was not uploaded to this demo. Upload the file with "
                                  "the request (the API clients' handle_file does); paths on the server are not read.",
    "failed validation": "Files are taken as uploads only; this demo does not fetch files from addresses.",
}


def session_guard(demo: gr.Blocks, limit: int) -> Callable[..., dict | list[dict]]:
    """A validator for any endpoint: refuse a request when its session already has ``limit`` requests
    running or queued (validators run before the event is queued)."""
    def guard(request: gr.Request, *values: object) -> dict | list[dict]:
        busy = _session_events(demo, request.session_hash)
        if busy >= limit:
            log.info("session over its limit of %d requests in flight", limit)
        message = (f"You already have {busy} requests in flight (the limit is {limit}). Wait for them to "
                   "finish or stop them.")
        checks = [gr.validate(busy < limit, message)] + [gr.validate(True, "")] * (len(values) - 1)
        return checks[0] if len(checks) == 1 else checks  # Gradio takes one input's check unwrapped

    return guard


def _session_events(demo: gr.Blocks, session_hash: str | None) -> int:
    """Events of one session waiting in or being run by Gradio's queue."""
    queue = demo._queue
    waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    running = [e for job in queue.active_jobs if job for e in job]
    return sum(e.session_hash == session_hash for e in waiting + running)


class PlainRefusals:
    """ASGI middleware: Gradio's 400 answers that refuse a file reference are reworded without the server
    paths they name, and a refusal by a validator (422, e.g. the per-session limit) reaches the JavaScript
    client as its plain message (it shows ``detail`` as is; Gradio sends a list of checks, which the page
    and the Python client read and keep). Every other response passes through untouched (streams
    included)."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []
        statuses = (400, 422) if _javascript_client(scope) else (400,)

        async def reword(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] in statuses:
                start = message
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    await _send_reworded(send, start, b"".join(chunks))
            else:
                await send(message)

        await self.app(scope, receive, reword)


def _javascript_client(scope: dict) -> bool:
    """A request from an API client other than the Python one (``gradio_client/<version>; ...`` as its
    User-Agent), which reads Gradio's list of checks itself."""
    headers = dict(scope.get("headers") or [])
    return headers.get(b"x-gradio-user") == b"api" and b"gradio_client/" not in headers.get(b"user-agent", b"")


def _plain(detail: object) -> str | None:
    """The plain words for a refusal: a validator's failed checks joined, or a file refusal reworded."""
    if isinstance(detail, list):
        failed = [c.get("message", "") for c in detail if isinstance(c, dict) and c.get("is_valid") is False]
        return " ".join(failed) or None
    return next((text for key, text in _REFUSALS.items() if key in str(detail)), None)


async def _send_reworded(send: Callable, start: dict, body: bytes) -> None:
    try:
        detail = json.loads(body).get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    plain = _plain(detail)
    if plain is not None:
        body = json.dumps({"detail": plain}).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        start = {**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
    await send(start)
    await send({"type": "http.response.body", "body": body})
