"""The input schemas of the farm's routes (pydantic models), used by :func:`api.validate.takes`.

They accept what ComfyUI accepts (its clients send the same requests here) and refuse the rest
with a 400: a query value that is not a number where a number goes, a body that is not an object,
a file name holding a NUL. Query models ignore unknown parameters (browsers add cache busters);
body models keep unknown fields (ComfyUI passes them on to ``on_prompt`` handlers and ignores them).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

# text that names something: no NUL (no file system, Redis key or header takes one), bounded
Name = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00]*$")]
ShortName = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00]*$")]
StreamId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}(-[0-9]{1,20})?$")]
FileKind = Literal["input", "output", "temp"]


def _truthy(value: Any) -> Any:
    """ComfyUI tests flags with Python truthiness (``if json_data.get("clear")``)."""
    return bool(value)


Flag = Annotated[bool, BeforeValidator(_truthy)]


def _query_flag(value: Any) -> Any:
    return str(value).lower() == "true"


QueryFlag = Annotated[bool, BeforeValidator(_query_flag)]


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- /prompt, /interrupt, /queue, /history ---------------------------------------------------------


class PromptBody(Body):
    """``POST /prompt`` (spec section 1). ``prompt`` is checked node by node by the validator."""

    prompt: dict[str, Any] | None = None
    client_id: ShortName | None = None
    prompt_id: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")] | None = None
    number: float | None = None
    front: Flag = False
    extra_data: dict[str, Any] | None = None
    partial_execution_targets: list[ShortName] | None = None

    @field_validator("extra_data")
    @classmethod
    def _priority(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """``extra_data["priority"]``, the run's priority level (worker/prompt_queue.py), is an integer."""
        if value is not None and "priority" in value:
            _priority_level(value["priority"], "extra_data.priority")
        return value

    @field_validator("number", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return None if value is None else float(value)
        try:
            number = float(value)  # ComfyUI: float(json_data["number"]); strings of numbers too
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"number must be a number, not {type(value).__name__}") from exc
        if not math.isfinite(number):
            raise ValueError("number must be finite")
        return number


class InterruptBody(Body):
    prompt_id: ShortName | None = None


class ClearOrDelete(Body):
    """``POST /queue`` and ``POST /history``: ``{"clear": true}`` and/or ``{"delete": [ids]}``."""

    clear: Flag = False
    delete: list[ShortName | int] | None = None


class HistoryQuery(Query):
    max_items: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    offset: Annotated[int, Field(ge=-1, le=10_000_000)] | None = None


class EventsQuery(Query):
    after: StreamId | None = None


class PreviewQuery(Query):
    """``GET /nodefarm/dashboard/preview``: one stored preview event of a run."""

    run: ShortName
    event: StreamId


# ---- files -----------------------------------------------------------------------------------------


class ViewQuery(Query):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00]*$")]
    type: FileKind | Literal[""] = "output"
    subfolder: Name = ""
    preview: Annotated[str, StringConstraints(max_length=64)] | None = None
    channel: Literal["", "rgb", "a", "rgba"] = ""


class UploadForm(Query):
    type: FileKind | Literal[""] = "input"
    subfolder: Name = ""
    overwrite: Annotated[str, StringConstraints(max_length=16)] = ""


class MaskForm(UploadForm):
    original_ref: Annotated[str, StringConstraints(min_length=2, max_length=4096)]


class ViewMetadataQuery(Query):
    filename: Name | None = None


# ---- jobs --------------------------------------------------------------------------------------------


class JobsQuery(Query):
    status: Annotated[str, StringConstraints(max_length=256)] | None = None
    workflow_id: ShortName | None = None
    sort_by: Annotated[str, StringConstraints(to_lower=True)] = "created_at"
    sort_order: Annotated[str, StringConstraints(to_lower=True)] = "desc"
    limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    offset: Annotated[int, Field(le=10_000_000)] = 0

    @field_validator("sort_by")
    @classmethod
    def _sort_by(cls, value: str) -> str:
        if value not in ("created_at", "execution_duration"):
            raise ValueError("sort_by must be 'created_at' or 'execution_duration'")
        return value

    @field_validator("sort_order")
    @classmethod
    def _sort_order(cls, value: str) -> str:
        if value not in ("asc", "desc"):
            raise ValueError("sort_order must be 'asc' or 'desc'")
        return value


class CancelJobsBody(Body):
    job_ids: Annotated[list[Any], Field(max_length=10_000)]


PRIORITY_LIMIT = 1_000_000  # worker/prompt_queue.py PRIORITY_LIMIT


def _priority_level(value: Any, name: str) -> int:
    """A run's priority level (worker/prompt_queue.py: higher is admitted sooner): an integer (an
    integral float too, never a bool or a string) within +-PRIORITY_LIMIT."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{name} must be an integer")
    if abs(value) > PRIORITY_LIMIT:
        raise ValueError(f"{name} must lie within -{PRIORITY_LIMIT} and {PRIORITY_LIMIT}")
    return int(value)


class JobPriorityBody(Body):
    """``POST /api/jobs/<id>/priority``: a pending job's new priority level."""

    priority: int

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> int:
        return _priority_level(value, "priority")


# ---- memory, logs, users, settings, user data --------------------------------------------------------


class FreeBody(Body):
    unload_models: Flag = False
    free_memory: Flag = False


class SubscribeBody(Body):
    clientId: ShortName
    enabled: Flag = True


class UserBody(Body):
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256,
                                               pattern=r"^[^\x00]*$")]


class SettingsBody(Body):
    """``POST /settings``: an object of setting id -> value, merged into the stored settings."""


class UserdataListQuery(Query):
    dir: Name = ""
    recurse: QueryFlag = False
    full_info: QueryFlag = False
    split: QueryFlag = False


class UserdataV2Query(Query):
    path: Name = ""


class UserdataWriteQuery(Query):
    overwrite: Annotated[str, StringConstraints(max_length=16)] = "true"
    full_info: QueryFlag = False


# ---- path parameters -------------------------------------------------------------------------------


class PromptIdPath(BaseModel):
    prompt_id: ShortName


class JobIdPath(BaseModel):
    job_id: ShortName


class NodeClassPath(BaseModel):
    node_class: Name


class FolderPath(BaseModel):
    folder: ShortName


class ModelFilePath(BaseModel):
    folder: ShortName
    filename: Name


class ModelPreviewPath(BaseModel):
    folder: ShortName
    path_index: Annotated[int, Field(ge=0)]
    filename: Name


class TemplatePath(BaseModel):
    pack: ShortName
    path: Name


class TemplateFilePath(BaseModel):
    path: Name


class SubgraphPath(BaseModel):
    subgraph_id: ShortName


class DirectoryTypePath(BaseModel):
    directory_type: FileKind


class SettingIdPath(BaseModel):
    setting_id: Name


class UserFilePath(BaseModel):
    file: Name


class UserFileMovePath(BaseModel):
    file: Name
    dest: Name
