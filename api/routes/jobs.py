"""The jobs API of newer ComfyUI (spec 11; ``comfy_execution/jobs.py``), read from the farm's Redis
queue and history. Only under ``/api/`` (upstream registers these routes with the prefix in the path).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response

from api.auth import SUBMITTER_KEY
from api.routing import farm, json_response
from api.schemas import CancelJobsBody, JobIdPath, JobPriorityBody, JobsQuery
from api.validate import takes
from nodes.core.item import QueueItem
from worker import cancel as cancelling
from worker import history, keys, prompt_queue, runstore

bp = Blueprint("jobs", __name__)

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "pending", "in_progress", "completed", "failed", "cancelled"
ALL_STATUSES = (PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED)
PREVIEWABLE_MEDIA_TYPES = frozenset({"images", "video", "audio", "3d", "text"})
THREE_D_EXTENSIONS = (".obj", ".fbx", ".gltf", ".glb", ".usdz")
TEXT_EXTENSIONS = (".txt", ".md", ".json")
TEXT_PREVIEW_MAX_LENGTH = 1024


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _meta(extra_data: Any) -> tuple[int | None, str | None]:
    extra = extra_data if isinstance(extra_data, dict) else {}
    create_time = extra.get("create_time")
    pnginfo = extra.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    workflow_id = workflow.get("id") if isinstance(workflow, dict) else None
    return (int(create_time) if isinstance(create_time, (int, float)) else None), (str(workflow_id) if workflow_id else None)


def _submitter(extra_data: Any) -> str | None:
    """Who submitted the run: the token's name (the client id on a farm without tokens)."""
    name = extra_data.get(SUBMITTER_KEY) if isinstance(extra_data, dict) else None
    return str(name) if name else None


def _normalize_item(item: Any) -> Any:
    if isinstance(item, str):
        if item.lower().endswith(THREE_D_EXTENSIONS):
            return {"filename": item, "type": "output", "subfolder": "", "mediaType": "3d"}
        return None
    return item if isinstance(item, dict) else None


def normalize_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            out[node_id] = node_outputs
            continue
        node: dict[str, Any] = {}
        for media_type, items in node_outputs.items():
            if media_type == "animated" or not isinstance(items, list):
                node[media_type] = items
                continue
            node[media_type] = [(_normalize_item(i) or i) for i in items if i is not None]
        out[node_id] = node
    return out


def _is_previewable(media_type: str, item: dict[str, Any]) -> bool:
    if media_type in PREVIEWABLE_MEDIA_TYPES:
        return True
    fmt = str(item.get("format", "") or "")
    if fmt.startswith(("video/", "audio/")):
        return True
    name = str(item.get("filename", "")).lower()
    return name.endswith(THREE_D_EXTENSIONS) or name.endswith(TEXT_EXTENSIONS)


def _is_text(media_type: str, item: dict[str, Any]) -> bool:
    return media_type == "text" or str(item.get("filename", "")).lower().endswith(TEXT_EXTENSIONS)


def outputs_summary(outputs: dict[str, Any]) -> tuple[int, int, dict[str, Any] | None]:
    """(outputs_count, previewable_outputs_count, preview_output) with upstream's preview priority."""
    count = previewable = 0
    preview = fallback = text_file = text_value = None
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            continue
        for media_type, items in node_outputs.items():
            if media_type == "animated" or not isinstance(items, list):
                continue
            for raw in items:
                item = raw if isinstance(raw, dict) else _normalize_item(raw)
                if item is None:
                    if media_type == "text" and raw is not None and text_value is None:
                        value = raw[0] if isinstance(raw, (list, tuple)) and raw else str(raw)
                        value = str(value)
                        entry: dict[str, Any] = {"content": value[:TEXT_PREVIEW_MAX_LENGTH]}
                        if len(value) > TEXT_PREVIEW_MAX_LENGTH:
                            entry["truncated"] = True
                        text_value = {**entry, "nodeId": node_id, "mediaType": media_type}
                    continue
                count += 1
                if not _is_previewable(media_type, item):
                    continue
                previewable += 1
                if preview is not None:
                    continue
                enriched = {**item, "nodeId": node_id}
                enriched.setdefault("mediaType", media_type)
                if _is_text(media_type, item):
                    text_file = text_file or enriched
                elif item.get("type") == "output":
                    preview = enriched
                elif fallback is None:
                    fallback = enriched
    return count, previewable, preview or fallback or text_file or text_value


def queue_job(item: QueueItem, status: str, include_workflow: bool = False, started: int | None = None) -> dict[str, Any]:
    number, pid, prompt, extra_data = item.number, item.prompt_id, item.prompt, item.extra_data
    create_time, workflow_id = _meta(extra_data)
    job = _prune(
        {
            "id": pid,
            "status": status,
            "priority": number,
            # upstream stamps create_time at POST /prompt; without it, the best time we know
            "create_time": create_time if create_time is not None else (started or int(time.time() * 1000)),
            "execution_start_time": started if status == IN_PROGRESS else None,
            "outputs_count": 0,
            "previewable_outputs_count": 0,
            "workflow_id": workflow_id,
            "submitter": _submitter(extra_data),
        }
    )
    if include_workflow:
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def history_job(pid: str, entry: dict[str, Any], include_outputs: bool = False, finished_at: float | None = None) -> dict[str, Any]:
    number, _pid, prompt, extra_data, _outputs = (list(entry.get("prompt") or []) + [None] * 5)[:5]
    facts = history.job_facts(entry, finished_at)  # status and times as the jobs indexes have them
    status_info = entry.get("status") or {}
    outputs = entry.get("outputs") or {}
    count, previewable, preview = outputs_summary(outputs)
    job = _prune(
        {
            "id": pid,
            "status": facts.status,
            "priority": number,
            "create_time": facts.create_time,
            "execution_start_time": facts.start,
            "execution_end_time": facts.end,
            "execution_error": facts.error,
            "outputs_count": count,
            "previewable_outputs_count": previewable,
            "preview_output": preview,
            "workflow_id": facts.workflow_id,
            "submitter": _submitter(extra_data),
        }
    )
    if include_outputs:
        job["outputs"] = normalize_outputs(outputs)
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def _started(pid: str) -> int | None:
    start, _end, _err, _int = history.message_times(runstore.messages(farm().r, pid, first=1))
    return int(start) if isinstance(start, (int, float)) else None


def _error(message: str, status: int = 400, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status)


@bp.route("/api/jobs", methods=["GET"])
@takes(query=JobsQuery, error_type="plain", summary="Jobs (queued, running, finished) with filters, sorting and paging")
def list_jobs(query: JobsQuery) -> Response:
    statuses: list[str] | None = None
    if query.status:
        statuses = [s.strip().lower() for s in query.status.split(",") if s.strip()]
        bad = [s for s in statuses if s not in ALL_STATUSES]
        if bad:
            return _error(f"Invalid status value(s): {', '.join(bad)}. Valid values: {', '.join(ALL_STATUSES)}")
    wanted = set(statuses or ALL_STATUSES)
    sort_by, sort_order, limit, offset = query.sort_by, query.sort_order, query.limit, max(0, query.offset)

    f = farm()
    active: list[dict[str, Any]] = []
    if wanted & {IN_PROGRESS, PENDING}:
        running, pending = prompt_queue.queue_items(f.r)
        if IN_PROGRESS in wanted:
            active += [queue_job(item, IN_PROGRESS, started=_started(item.prompt_id)) for item in running]
        if PENDING in wanted:
            active += [queue_job(item, PENDING) for item in pending]
    workflow_id = query.workflow_id
    if workflow_id:
        active = [j for j in active if j.get("workflow_id") == workflow_id]

    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job.get("execution_start_time"), job.get("execution_end_time")
            return float(end - start) if start and end else 0.0
        return float(job.get("create_time") or 0)

    desc = sort_order == "desc"
    active.sort(key=key, reverse=desc)
    finished = [s for s in (COMPLETED, FAILED, CANCELLED) if s in wanted]
    history.sync(f.r)
    order = "duration" if sort_by == "execution_duration" else "created"
    source: history.Indexed
    if workflow_id and finished and order != "created":
        source = history.Ranked(f.r, workflow_id, finished, order, desc)
    else:  # one workflow's finished runs by creation time have indexes of their own
        source = history.Indexed(f.r, history.statuses_key(order, finished, workflow_id) if finished else [], desc)
    page, total = _merged_page(active, source, key, offset, limit)
    return json_response(
        {
            "jobs": page,
            "pagination": {"offset": offset, "limit": limit if limit is not None else total, "total": total,
                           "has_more": offset + len(page) < total},
        }
    )


def _finished_jobs(ids: list[str]) -> list[dict[str, Any]]:
    """Jobs of finished runs, in the order of ``ids`` (runs deleted meanwhile left out, and unindexed)."""
    r = farm().r
    found = history.entries(r, ids)
    history.forget(r, [p for p in ids if p not in found])
    times = history.finish_times(r, list(found))
    return [history_job(p, found[p], finished_at=times.get(p)) for p in ids if p in found]


def _merged_page(active: list[dict[str, Any]], source: history.Indexed, key: Callable[[dict[str, Any]], float],
                 offset: int, limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """One page of the queued jobs (``active``, sorted) merged with the finished runs of ``source``
    (sorted in Redis; a queued job goes before a finished one of the same key): the queued jobs'
    places are counted (ZCOUNT), the finished jobs of the page read with one ZRANGE, whatever the
    history's length."""
    total = len(active) + source.count()
    end = total if limit is None else min(total, offset + limit)
    places = [i + n for i, n in enumerate(source.count_before([key(j) for j in active]))]
    shown = {place: job for place, job in zip(places, active, strict=True) if offset <= place < end}
    skipped = sum(1 for place in places if place < offset)
    rest = iter(_finished_jobs(source.window(offset - skipped, end - offset - len(shown))))
    page: list[dict[str, Any]] = []
    for place in range(offset, end):
        job = shown.get(place) or next(rest, None)
        if job is not None:
            page.append(job)
    return page, total


def find_job(pid: str) -> dict[str, Any] | None:
    f = farm()
    entry = history.get_one(f.r, pid).get(pid)
    if entry is not None:
        return history_job(pid, entry, include_outputs=True, finished_at=history.finish_times(f.r, [pid]).get(pid))
    running, pending = prompt_queue.queue_items(f.r)
    for item in running:
        if item.prompt_id == pid:
            return queue_job(item, IN_PROGRESS, include_workflow=True, started=_started(pid))
    for item in pending:
        if item.prompt_id == pid:
            return queue_job(item, PENDING, include_workflow=True)
    return None


@bp.route("/api/jobs/<job_id>", methods=["GET"])
@takes(path=JobIdPath, error_type="plain", summary="One job, with its outputs and workflow")
def get_job(job_id: str) -> Response:
    job = find_job(job_id)
    if job is None:
        return _error("Job not found", 404)
    return json_response(job)


def cancel(pid: str) -> bool:
    """Dequeue a pending job or interrupt a running one; False for a finished or unknown id."""
    f = farm()
    if f.r.zscore(keys.QUEUE, pid) is not None and prompt_queue.dequeue(f.r, [pid]):
        return True
    if f.r.zscore(keys.RUNNING, pid) is not None:
        return bool(cancelling.interrupt(f, pid))
    return False


@bp.route("/api/jobs/<job_id>/cancel", methods=["POST"])
@takes(path=JobIdPath, error_type="plain", summary="Cancel a pending or running job")
def cancel_job(job_id: str) -> Response:
    return json_response({"cancelled": cancel(job_id)})


@bp.route("/api/jobs/<job_id>/priority", methods=["POST"])
@takes(path=JobIdPath, body=JobPriorityBody, error_type="plain",
       summary="Change a pending job's priority level (higher is admitted sooner; worker/prompt_queue.py)")
def set_job_priority(job_id: str, body: JobPriorityBody) -> Response:
    f = farm()
    if prompt_queue.set_priority(f.r, job_id, body.priority):
        return json_response({"id": job_id, "status": PENDING, "priority_level": body.priority})
    return _not_pending(job_id, "only a queued job's priority can change")


@bp.route("/api/jobs/<job_id>/front", methods=["POST"])
@takes(path=JobIdPath, error_type="plain",
       summary="Move a pending job to the front: the next job admitted (worker/prompt_queue.py move_to_front)")
def move_job_to_front(job_id: str) -> Response:
    item = prompt_queue.move_to_front(farm().r, job_id)
    if item is not None:
        return json_response({"id": job_id, "status": PENDING, "number": item.number,
                              "priority_level": prompt_queue.priority_of(item.extra_data)})
    return _not_pending(job_id, "only a queued job can move to the front")


def _not_pending(job_id: str, why: str) -> Response:
    if find_job(job_id) is None:
        return _error("Job not found", 404)
    return _error(f"Job is not pending: {why}", 409)


@bp.route("/api/jobs/cancel", methods=["POST"])
@takes(body=CancelJobsBody, error_type="plain", summary="Cancel several jobs by id")
def cancel_jobs(body: CancelJobsBody) -> Response:
    ids = body.job_ids
    invalid = []
    for jid in ids:
        try:
            if not isinstance(jid, str) or str(uuid.UUID(jid)) != jid:
                raise ValueError
        except ValueError:
            invalid.append(jid if isinstance(jid, str) else repr(jid))
    if invalid:
        return _error("job_ids contains invalid id(s)", invalid_ids=invalid)
    cancelled = False
    for jid in ids:
        cancelled = cancel(jid) or cancelled
    return json_response({"cancelled": cancelled})
