"""No secret or token in any log line, access logs included.

Canopy sends its own one-time codes in URL fragments and request bodies, never in paths, so servers have nothing to
log. What arrives anyway (an old invitation link with its code in the path, a token pasted in a query string, an
``Authorization`` header echoed by a client library) is masked here: the ``RedactSecrets`` logging filter on every
handler of config/settings.py (Django's own request and runserver logs included), and ``RedactingLogger`` for
gunicorn's access log (config/gunicorn.conf.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

MASK = "[redacted]"
_PATTERNS = (
    # Personal access tokens (cnp_…) and invitation codes (inv_…).
    (re.compile(r"\b(cnp|inv)_[A-Za-z0-9_-]{6,}"), rf"\1_{MASK}"),
    # Bearer credentials in a logged header.
    (re.compile(r"(?i)\b(bearer\s+)[^\s,;\"']+"), rf"\1{MASK}"),
    # Values of query parameters that carry secrets.
    (
        re.compile(
            r"(?i)((?:^|[?&\s])(?:token|code|password|secret|key|api_key|access_token|client_secret)=)[^&#\s\"']*"
        ),
        rf"\1{MASK}",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record whose formatted message holds a token or a secret query value."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is left to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class RedactingLogger(GunicornLogger):
    """gunicorn's logger whose access-log fields (request line, path, query, referer, headers) are masked."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
