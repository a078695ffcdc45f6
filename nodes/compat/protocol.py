"""ComfyUI's ``protocol`` module: the event numbers of binary WebSocket frames (spec §4.4).

A binary frame is a 4-byte big-endian event number followed by the payload.
"""

from __future__ import annotations


class BinaryEventTypes:
    PREVIEW_IMAGE = 1
    """Payload: 4-byte BE image type (1 = JPEG, 2 = PNG) + encoded image."""
    UNENCODED_PREVIEW_IMAGE = 2
    """Internal: ``("JPEG"|"PNG", PIL.Image, max_size)``; encoded and sent as event 1."""
    TEXT = 3
    """Payload: 4-byte BE node id length + node id + text, all UTF-8 (frontend ``progress_text``)."""
    PREVIEW_IMAGE_WITH_METADATA = 4
    """Payload: 4-byte BE metadata length + metadata JSON + encoded image."""
