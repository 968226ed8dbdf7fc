"""Cheap change detection for a hub polling many agents: every JSON read carries a weak ETag,
and a request whose ``If-None-Match`` names the current one gets an empty 304.

The tag names the answer's *content*, not its bytes: the snapshot time (``taken_at``) and the
traffic counters (``observed.stats``) change on every snapshot of a busy host, so a tag over
the raw bytes would never repeat and the hub would download every vif on every poll. Likewise
``/api/v1/host``'s uptimes (``uptime_s``, ``agent_uptime_s``). All are blanked before
hashing, hence a weak tag (``W/``: semantically equal, not byte-equal): a
client that sends it accepts counters as old as the copy it holds.
"""

from __future__ import annotations

import hashlib
import re

from fastapi.responses import Response

# JSON as the routes encode it (compact): inside a string value a quote is escaped (\"), so
# these patterns match only real keys. stats objects are flat (integers only).
_VOLATILE = re.compile(rb'"taken_at":"[^"]*"|"stats":\{[^{}]*\}|"(?:agent_)?uptime_s":(?:null|[-0-9.eE+]+)')
NOT_MODIFIED_DOC = "Not Modified: the If-None-Match ETag still names the answer (empty body)"


def content_tag(body: bytes) -> str:
    digest = hashlib.blake2b(_VOLATILE.sub(b"", body), digest_size=12).hexdigest()
    return f'W/"{digest}"'


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # If-None-Match uses the weak comparison: W/"x" and "x" name the same content.
    theirs = {t.strip().removeprefix("W/") for t in header.split(",")}
    return tag.removeprefix("W/") in theirs


def conditional(if_none_match: str | None, resp: Response) -> Response:
    """``resp`` (which carries its ETag), or a 304 when the client already holds that content."""
    tag = resp.headers.get("etag")
    if tag is None or resp.status_code != 200:
        return resp
    if _matches(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-cache"})
    return resp
