"""Request validation: every route declares the schema of its input, checked before the view runs.

A route says what it takes with :func:`takes` (a pydantic model each for the query string, the JSON
body, the form fields and the path parameters); the checked values reach the view as keyword
arguments (``query=``, ``body=``, ``form=``), and input that does not fit is a 400 in ComfyUI's
error shape (``{"error": {"type", "message", "details", "extra_info"}, "node_errors": {}}``), never
a 500. The same declarations make the OpenAPI description (:mod:`api.openapi`), so the routes, their
documentation and the fuzz tests that read it cannot drift apart.

Views that must look at the raw body first (``POST /prompt`` lets custom nodes' ``on_prompt``
handlers rewrite it) call :func:`check` themselves and declare the model with ``check_body=False``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, request
from pydantic import BaseModel, ValidationError

from api.routing import NOT_JSON, body_json, json_response

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RouteSpec:
    """What a route takes, for validation and for :mod:`api.openapi`."""

    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    raw_body: str = ""  # a media type when the body is taken as raw bytes (user data files)
    files: tuple[str, ...] = ()  # multipart file fields
    error_type: str = "invalid_request"  # "plain": the jobs API's {"error": "message"} shape
    summary: str = ""


class Invalid(Exception):
    """Input that does not fit its route's schema: a 400 in ComfyUI's error shape."""

    def __init__(self, message: str, details: str, errors: list[dict[str, Any]] | None = None,
                 error_type: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.errors = errors or []
        self.error_type = error_type

    def response(self) -> Response:
        if self.error_type == "plain":  # the jobs API's shape (upstream's /api/jobs)
            return json_response({"error": f"{self.message}: {self.details}", "errors": self.errors}, 400)
        return json_response({
            "error": {"type": self.error_type, "message": self.message, "details": self.details,
                      "extra_info": {"errors": self.errors}},
            "node_errors": {},
        }, 400)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(whole)"


def check(model: type[M], data: Any, part: str, error_type: str = "invalid_request") -> M:
    """``data`` checked against ``model``; :class:`Invalid` naming each misfit otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": [part, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_input=False, include_context=False)]
        details = "; ".join(f"{_where((part, *e['loc'][1:]))}: {e['msg']}" for e in errors)
        raise Invalid(f"Invalid {part}", details, errors, error_type) from None


def json_body(default: Any = None, error_type: str = "invalid_request") -> Any:
    """The JSON body (``default`` when there is none); :class:`Invalid` when there is one that is not
    strict JSON, too deeply nested, or not text."""
    value = body_json(default, invalid=NOT_JSON)
    if value is NOT_JSON:
        raise Invalid("Invalid body", "the body is not strict JSON (NaN, Infinity, lone surrogates, or nesting "
                                      "deeper than 128 levels are refused)", error_type=error_type)
    return value


def takes(*, query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
          form: type[BaseModel] | None = None, path: type[BaseModel] | None = None, raw_body: str = "",
          files: tuple[str, ...] = (), check_body: bool = True, error_type: str = "invalid_request",
          summary: str = "") -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    spec = RouteSpec(query, body, form, path, raw_body, files, error_type, summary)

    def decorator(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Response:
            if path is not None:
                check(path, kwargs, "path", error_type)
            if query is not None:
                kwargs["query"] = check(query, request.args.to_dict(), "query", error_type)
            if body is not None and check_body:
                kwargs["body"] = check(body, json_body({}, error_type), "body", error_type)
            if form is not None:
                kwargs["form"] = check(form, request.form.to_dict(), "form", error_type)
            return view(*args, **kwargs)

        checked.nodefarm_spec = spec  # type: ignore[attr-defined]
        return checked

    return decorator


def spec_of(view: Callable[..., Any]) -> RouteSpec | None:
    return getattr(view, "nodefarm_spec", None)
