"""An attachment to a task request: a small text document (an e-mail, a contract clause, a log).

Its text is appended to the request, so every agent reads it, and its name, type, size and
sha256 go into the task's data, so the task shows what was attached. Through the REST API a
client does the same by sending the combined `input` and `data.attachment`.
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_ATTACHMENT_BYTES = 32 * 1024
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")


class AttachmentError(ValueError):
    pass


def attach(text: str, filename: str, content_type: str, raw: bytes) -> tuple[str, dict[str, Any]]:
    """Return (input with the attachment's text appended, the attachment's facts for `data`)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or "attachment"
    if len(raw) > MAX_ATTACHMENT_BYTES:
        raise AttachmentError(
            f"The attachment {name!r} is {len(raw):,} bytes; attach a text file of at most "
            f"{MAX_ATTACHMENT_BYTES // 1024} KiB, or paste the relevant part into the request."
        )
    if content_type and not content_type.startswith(TEXT_TYPES) and content_type != "application/octet-stream":
        raise AttachmentError(
            f"The attachment {name!r} is {content_type}; only text documents (.txt, .md, .csv, .json, "
            ".eml …) can be attached."
        )
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AttachmentError(
            f"The attachment {name!r} is not UTF-8 text; save it as plain text and attach it again."
        ) from exc
    if "\x00" in body:
        raise AttachmentError(f"The attachment {name!r} is a binary file; attach a text document.")
    facts = {
        "filename": name,
        "content_type": content_type or "text/plain",
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    return f"{text}\n\n--- attachment: {name} ---\n{body}", facts
