"""Secrets in URIs: what a command line, log line, tag or file may show of a storage or tracking URI.

A password in ``postgresql://user:secret@host/db`` or ``...?password=secret``, or a token passed as
the user of a web URI (``https://TOKEN@mlflow.example``), must never reach
output, MLflow tags and params, report files or another process's argv (``ps`` shows argv to every
user of the machine). Whatever shows a URI shows ``redact_uri(uri)``; a process that needs the real
one gets it through its environment, which only the same user can read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

REDACTED = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# a URI inside free text (an error message, a log line) ends at whitespace or a quote
_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"`<>]*")
# query keys whose value is a credential: password, sslpassword, pwd, token, api_key, secret, sig, ...
_WEB = re.compile(r"https?", re.IGNORECASE)
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)


def _secret_spans(uri: str) -> list[tuple[int, int]]:
    """(start, end) of every secret in ``uri``: the userinfo password and secret query values."""
    scheme = _SCHEME.search(uri)
    if scheme is None:
        return []
    start = query_from = scheme.end()
    spans = []
    # The last '@': an unencoded '@', '/' or '?' inside a password must not end it early
    # (SQLAlchemy accepts '/' there); a stray '@' later on only hides more than needed.
    at = uri.rfind("@", start)
    colon = uri.find(":", start, at) if at != -1 else -1
    if colon != -1 and colon + 1 < at:
        spans.append((colon + 1, at))
        query_from = at + 1
    elif _WEB.fullmatch(uri[scheme.start() : scheme.end() - 3]) and start < at and "/" not in uri[start:at]:
        # https://TOKEN@host: on the web a user part alone is how tokens are passed (a database's is a name)
        spans.append((start, at))
        query_from = at + 1
    query = uri.find("?", query_from)
    if query != -1:
        pos = query + 1
        while pos <= len(uri):
            ends = [i for i in (uri.find(c, pos) for c in "&;#") if i != -1]
            end = min(ends, default=len(uri))
            key, eq, value = uri[pos:end].partition("=")
            if eq and value and _SECRET_KEY.search(unquote(key)):
                spans.append((pos + len(key) + 1, end))
            if end < len(uri) and uri[end] == "#":
                break
            pos = end + 1
    return spans


def redact_uri(uri: str) -> str:
    """``uri`` with every password and secret query value shown as ``***``; anything else unchanged."""
    out, last = [], 0
    for start, end in _secret_spans(uri):
        out += [uri[last:start], REDACTED]
        last = end
    return "".join(out) + uri[last:]


def redact_text(text: str) -> str:
    """Every URI inside free text (an error message, a log line, a command line) redacted."""
    return _IN_TEXT.sub(lambda m: redact_uri(m.group()), text)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line's arguments, each redacted whole (a quoted password may hold spaces)."""
    return [redact_uri(a) for a in argv]


def hides_secret(uri: str) -> bool:
    """Whether ``uri`` was redacted: it holds ``***`` where a secret goes, so it cannot connect."""
    return any(uri[s:e] == REDACTED for s, e in _secret_spans(uri))
