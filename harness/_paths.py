"""Names that become paths: a ladder, rung, study or run name is one file or folder name under an output root.

Such names come from YAML files, the command line and the tracking store, so ``../../x`` must not
write outside ``results/``, ``tensorboard/`` or ``--out``. ``check_name`` refuses a name that is
not one plain path component; ``encode_name`` turns any name into one (for names read back from a
store, where refusing would make the run unusable); ``safe_child`` builds the path and checks that
it resolves under its root (a symlink inside the root cannot lead out either).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import UserError

_MAX_BYTES = 255  # a file name's limit on Linux and macOS file systems
_EXPECTED = "a single file name (not empty, '.' or '..'; no '/', '\\', NUL or control characters; at most 255 bytes)"


def _bad_char(c: str) -> bool:
    return c in "/\\" or ord(c) < 32 or ord(c) == 127


def check_name(value: str, what: str, error: type[UserError] = UserError) -> str:
    """``value`` if it is one plain path component, else ``error`` (a :class:`UserError`) naming ``what``."""
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or any(_bad_char(c) for c in value)
        or len(value.encode("utf-8", "surrogatepass")) > _MAX_BYTES
    ):
        raise error(f"{what} must be {_EXPECTED}, but got {value!r}")
    return value


def encode_name(value: str) -> str:
    """``value`` as one path component: '%', separators and control characters percent-encoded,
    '.' and '..' spelled out, and an over-long name shortened with a hash so that names stay distinct."""
    out = "".join(f"%{ord(c):02X}" if c == "%" or _bad_char(c) else c for c in value)
    if out in ("", ".", ".."):
        out = "%2E" * len(out) or "%00"
    if len(out.encode("utf-8", "surrogatepass")) > _MAX_BYTES:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        out = out.encode("utf-8", "surrogatepass")[:200].decode("utf-8", "ignore") + "-" + digest
    return out


def safe_child(root: Path, *parts: str, what: str = "name") -> Path:
    """``root / part / ...`` after :func:`check_name` on each part, refused unless it resolves under ``root``."""
    for part in parts:
        check_name(part, what)
    path = root.joinpath(*parts)
    target = path.resolve()
    if not target.is_relative_to(root.resolve()):
        raise UserError(f"{what} {'/'.join(parts)!r} must stay inside {root}, but it leads to {target}")
    return path


def check_folder(path: Path | str, what: str) -> Path:
    """``path`` as a folder to write into: one that exists or can be made (the first existing one of it and
    its parents is a folder), else a :class:`UserError` naming the file in the way."""
    folder = Path(path)
    for existing in (folder, *folder.parents):
        if existing.exists():
            if existing.is_dir():
                return folder
            where = "" if existing == folder else f": {existing} is a file"
            raise UserError(f"{what} {folder}{where or ' is a file'}; expected a folder (created if missing)")
    return folder
