"""ComfyUI's globals wired to the farm: ``send_sync``, progress bars, previews, the interrupt check,
and the file hooks of ``folder_paths`` (farm-wide save counters, inputs fetched on demand).

Installed once per worker process (after the fork). Each hook reports for the node this process
is executing, read from :mod:`worker.context`.
"""

from __future__ import annotations

import time
from typing import Any

from nodes import face
from nodes.core.state import RunState, node_ids, progress_delta
from worker import context, events, keys
from worker.farm import Farm

INTERRUPT_POLL_S = 0.02


def install(farm: Farm) -> None:
    """Wire ComfyUI's globals (send_sync, progress bar, interrupt, file counters) to the farm."""
    from nodes.compat import folder_paths, server
    from worker import files

    model_management = face.live("comfy.model_management")
    utils = face.live("comfy.utils")
    if model_management is face.stand_in("comfy.model_management"):
        model_management.configure(farm.settings.cpu)

    def make_preview(image: tuple, node: str) -> tuple[int, bytes]:
        ctx = context.current()
        view = ctx.view() if ctx is not None else RunState("", None, [])  # outside a node: no run
        meta = {**node_ids(view, node), "prompt_id": ctx.pid if ctx is not None else None}
        fmt, pil, max_size = (list(image) + [None, None, None])[:3]
        return events.PREVIEW_IMAGE_WITH_METADATA, events.preview_payload(pil, fmt, max_size, meta)

    def sink(event: str | int, data: Any, sid: str | None) -> None:
        ctx = context.current()
        if event == events.UNENCODED_PREVIEW_IMAGE and isinstance(data, (tuple, list)):
            event, data = make_preview(tuple(data), ctx.nid if ctx is not None else "")
        pipe = farm.r.pipeline(transaction=False)
        events.add(pipe, ctx.pid if ctx is not None else None, None, event, data, to=sid or "*")
        pipe.execute()

    server.PromptServer.instance.bind_sink(sink)

    last_poll = [0.0, False]

    def probe() -> bool:
        ctx = context.current()
        if ctx is None:
            return False
        now = time.monotonic()
        if now - last_poll[0] >= INTERRUPT_POLL_S:
            last_poll[0] = now
            last_poll[1] = bool(farm.r.exists(keys.run_cancel(ctx.pid)))
        return bool(last_poll[1])

    _interrupt_with(model_management, probe)

    def progress(value: float, total: float, preview: Any, node_id: str | None = None) -> None:
        model_management.throw_exception_if_processing_interrupted()
        ctx = context.current()
        if ctx is None:
            return
        node = node_id or ctx.nid
        view = ctx.view()
        pipe = farm.r.pipeline(transaction=False)
        # ComfyUI's order: the progress registry (progress_state) first, then `progress`
        events.add(pipe, ctx.pid, ctx.client_id, "progress_state", progress_delta(view, node, value, total, True))
        events.add(pipe, ctx.pid, ctx.client_id, "progress", {"value": value, "max": total, "prompt_id": ctx.pid, "node": node})
        if preview is not None and isinstance(preview, (tuple, list)) and len(preview) >= 2:
            kind, payload = make_preview(tuple(preview), node)
            events.add(pipe, ctx.pid, ctx.client_id, kind, payload)
        pipe.execute()

    utils.set_progress_bar_global_hook(progress)
    folder_paths.set_counter_hook(files.make_counter(farm.r))
    folder_paths.set_fetch_hook(files.make_fetch(farm.r, farm.settings))
    folder_paths.set_model_fetch_hook(files.make_model_fetch(farm.settings))


def _interrupt_with(model_management: Any, probe: Any) -> None:
    """Make ComfyUI's interrupt checks see a cancel of the run this process executes: our stand-in
    takes the probe; the user's ComfyUI has one global flag, so its two check functions are wrapped
    to raise the flag when the probe says the run was cancelled (a KSampler stops within a step)."""
    if hasattr(model_management, "set_interrupt_probe"):
        model_management.set_interrupt_probe(probe)
        return
    throw, asked = model_management.throw_exception_if_processing_interrupted, model_management.processing_interrupted

    def raise_flag() -> None:
        if probe():
            model_management.interrupt_current_processing(True)

    def throw_exception_if_processing_interrupted() -> None:
        raise_flag()
        throw()

    def processing_interrupted() -> bool:
        raise_flag()
        return bool(asked())

    model_management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    model_management.processing_interrupted = processing_interrupted
