"""Prompt validation at ``POST /prompt`` time: ComfyUI's rules and error shapes (spec §1.3-1.4, §5.2, §5.9).

:func:`validate_prompt` picks the output nodes, validates each output's upstream subtree (memoised per
node id) and returns a :class:`ValidationResult` carrying ComfyUI's ``error`` / ``node_errors`` JSON.
Constant inputs are converted (INT/FLOAT/STRING/BOOLEAN, ``{"__value__": ...}`` unwrapped) and
**written back into the prompt**, as upstream does.

Where the farm deliberately differs from ComfyUI 0.3.64 (all documented behaviour is kept):

* Errors of one node come in declaration order (required, then optional); upstream iterates a set.
* ``dependent_outputs`` lists exactly the failed outputs whose subtree contains the node (upstream also
  appends failed outputs validated later that do not depend on it). Outputs are taken in prompt order.
* The walk is iterative, so a chain of any length validates; a static cycle raises
  :class:`DependencyCycleError`, reported as ``exception_during_validation`` on the output (upstream
  recurses until ``RecursionError``). Link types are checked with :func:`nodes.types.types_match`.
* A link's socket index must be ``>= 0`` (a float index is used as an int) and ``RETURN_TYPES[index]``
  must answer, as upstream reads it (so a ``ByPassTypeTuple`` that answers every index accepts links
  past its length); otherwise an ``IndexError`` goes down the ordinary exception path.
* Keyword-only parameters of ``VALIDATE_INPUTS`` count as named arguments.
* **Deferred validation**: when ``VALIDATE_INPUTS`` rejects while at least one argument it received
  is a linked input (passed as ``None`` at POST time), the rejection is not reported; the node passes
  and the errors go to :attr:`ValidationResult.deferred_validation`, so the worker re-runs the
  validator with the real values (:func:`run_custom_validation`) before executing the node. This is
  what a validator inspecting a linked tensor (the seed's ``RobustNode``) needs.
  A validator that names ``input_types`` is never deferred: like upstream it is judged at POST time
  (it gets the linked inputs it names as ``None`` and the linked sources' output types in
  ``input_types``, and replaces the built-in link type check), so its rejection is a 400.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import traceback
from collections.abc import Callable, Coroutine, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nodes.core.graph import is_link
from nodes.core.listmap import slices
from nodes.errors import NodefarmNodesError
from nodes.registry import NodeRegistry
from nodes.schema import (
    HIDDEN_KINDS,
    declared_inputs,
    hidden_inputs,
    input_info,
    input_is_list,
    input_types,
    is_output_node,
    is_v3,
    memoized,
    return_types,
)
from nodes.types import types_match

log = logging.getLogger("nodefarm.validation")

ErrorDict = dict[str, Any]
# Memo entry of one validated node: (valid, its own errors).
Verdict = tuple[bool, list[ErrorDict]]

# Modules whose classes are V3 bases: a ``validate_inputs`` defined there is the default, not the node's.
_V3_BASE_MODULE_PREFIXES = ("comfy_api", "nodes.compat")
_MAX_LISTED_COMBO = 20
# constants of these types are converted (and written back into the prompt), as upstream does
_CONVERT: dict[str, Callable[[Any], Any]] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


class DependencyCycleError(NodefarmNodesError):
    """The links of the prompt form a cycle (found while validating)."""


@dataclass
class ValidationResult:
    """Outcome of :func:`validate_prompt`.

    ``ok`` is True when at least one output passed; ``outputs`` are the passing output ids (what
    ComfyUI calls ``outputs_to_execute``). ``error`` is the 400 body's ``error`` (None when ok).
    ``node_errors`` may be non-empty even when ok (some outputs failed). ``deferred_validation`` maps
    node id -> the ``custom_validation_failed`` errors its ``VALIDATE_INPUTS`` returned while it had
    linked inputs as ``None``; those nodes passed and must be re-validated with real values.
    """

    ok: bool
    error: ErrorDict | None
    outputs: list[str]
    node_errors: dict[str, Any]
    deferred_validation: dict[str, list[ErrorDict]] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomValidator:
    """A class's custom validator (V1 ``VALIDATE_INPUTS`` or an overridden V3 ``validate_inputs``)."""

    func: Callable[..., Any]
    arg_names: tuple[str, ...]
    has_kwargs: bool

    def wants(self, name: str) -> bool:
        return self.has_kwargs or name in self.arg_names


def custom_validator(cls: type) -> CustomValidator | None:
    """The validator of ``cls`` with its introspected argument names, or None."""
    func: Any = None
    if is_v3(cls):
        func = _own_attribute(cls, "validate_inputs") or _own_attribute(cls, "VALIDATE_INPUTS")
    else:
        func = getattr(cls, "VALIDATE_INPUTS", None)
    if func is None or not callable(func):
        return None
    spec = inspect.getfullargspec(func)
    return CustomValidator(
        func=func, arg_names=tuple(spec.args) + tuple(spec.kwonlyargs), has_kwargs=spec.varkw is not None
    )


def _own_attribute(cls: type, name: str) -> Any:
    """``getattr(cls, name)`` unless it is only the V3 base class' default."""
    for klass in cls.__mro__:
        if name in vars(klass):
            if (klass.__module__ or "").startswith(_V3_BASE_MODULE_PREFIXES):
                return None
            return getattr(cls, name)
    return None


def run_custom_validation(
    cls: type,
    input_data: Mapping[str, list[Any]],
    received_types: Mapping[str, Any] | None = None,
    run_awaitable: Callable[[Any], Any] | None = None,
) -> list[ErrorDict]:
    """Call the class's custom validator like ComfyUI and return its ``custom_validation_failed`` errors.

    ``input_data`` is ``{input_name: [values...]}`` (every input as a list, hidden inputs included);
    the validator gets only the names it declares (all with ``**kwargs``), plus ``input_types`` =
    ``received_types`` when it names it, list-mapped unless the class has ``INPUT_IS_LIST``. The
    worker calls this with real values for the nodes of ``deferred_validation``.
    """
    validator = custom_validator(cls)
    if validator is None:
        return []
    filtered = {k: list(v) for k, v in input_data.items() if validator.wants(k)}
    return _call_validator(cls, validator, filtered, dict(received_types or {}), run_awaitable or _run_fresh)


def _call_validator(
    cls: type,
    validator: CustomValidator,
    filtered: dict[str, list[Any]],
    received_types: dict[str, Any],
    run_awaitable: Callable[[Any], Any],
) -> list[ErrorDict]:
    if "input_types" in validator.arg_names:
        filtered["input_types"] = [received_types]
    results: list[Any] = []
    for _index, kwargs in slices(filtered, input_is_list(cls)):
        result = validator.func(**kwargs)
        if inspect.isawaitable(result):
            result = run_awaitable(result)
        results.append(result)
    errors: list[ErrorDict] = []
    for name in filtered:
        for result in results:
            if result is True or type(result).__name__ == "ExecutionBlocker":
                continue
            details = name if result is False else f"{name} - {result}"
            errors.append(
                {
                    "type": "custom_validation_failed",
                    "message": "Custom validation failed for node",
                    "details": details,
                    "extra_info": {"input_name": name},
                }
            )
    return errors


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _run_fresh(awaitable: Any) -> Any:
    """Run an awaitable to completion on a fresh event loop (in a helper thread if one is running here)."""
    coro = _await(awaitable)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class _AwaitRunner:
    """One event loop reused for every async validator of one :func:`validate_prompt` call."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None

    def run(self, awaitable: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return _run_fresh(awaitable)
        if self._runner is None:
            self._runner = asyncio.Runner()
        coro: Coroutine[Any, Any, Any] = _await(awaitable)
        return self._runner.run(coro)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def _full_type_name(exc: BaseException) -> str:
    klass = type(exc)
    module = klass.__module__
    if module in (None, "builtins"):
        return klass.__qualname__
    return f"{module}.{klass.__qualname__}"


def _graph_error(type_: str, message: str, details: str) -> ErrorDict:
    return {"type": type_, "message": message, "details": details, "extra_info": {}}


def _failure(error: ErrorDict, node_errors: dict[str, Any] | None = None) -> ValidationResult:
    return ValidationResult(ok=False, error=error, outputs=[], node_errors=node_errors or {})


def _linked_type(src_id: str, src_class: str, idx: Any, outputs: tuple[Any, ...]) -> Any:
    """``RETURN_TYPES[idx]`` of a link's source, read by indexing as upstream does: a tuple subclass
    that answers any index (the packs' ``ByPassTypeTuple``) accepts links past its length."""
    if isinstance(idx, float) and idx.is_integer():
        idx = int(idx)
    if not isinstance(idx, int):
        raise TypeError(f"output index of a link to node '{src_id}' must be an integer, got {idx!r}")
    try:
        if idx < 0:
            raise IndexError(idx)
        return outputs[idx]
    except IndexError:
        raise IndexError(
            f"output index {idx} of node '{src_id}' ({src_class}) is out of range: it has {len(outputs)} outputs"
        ) from None


LOGGED_FAILURES = 20  # failed outputs logged one by one; the rest are counted in one line


class _Validator:
    """State of one validate_prompt call: the memo, the walk, deferred rejections."""

    def __init__(self, prompt: dict[str, Any], registry: NodeRegistry) -> None:
        self.prompt = prompt
        self.registry = registry
        self.validated: dict[str, Verdict] = {}
        self.deps: dict[str, list[str]] = {}
        self.deferred: dict[str, list[ErrorDict]] = {}
        self.in_progress: set[str] = set()
        self.awaits = _AwaitRunner()
        self._plans: dict[type, tuple[dict[str, Any], CustomValidator | None, list[tuple[str, Any, str, dict, list]]]] = {}
        self._outputs: dict[type, tuple[Any, ...]] = {}
        self._matches: dict[tuple[str, str], bool] = {}
        self._tracebacks: dict[tuple[tuple[Any, int, int], ...], list[str]] = {}

    def format_tb(self, tb: Any) -> list[str]:
        """``traceback.format_tb(tb)``, formatted once per code path: thousands of nodes failing the
        same way (a prompt of many broken outputs) share one formatting (it reads and parses source)."""
        key_parts: list[tuple[Any, int, int]] = []
        walk = tb
        while walk is not None:
            key_parts.append((walk.tb_frame.f_code, walk.tb_lineno, walk.tb_lasti))
            walk = walk.tb_next
        key = tuple(key_parts)
        lines = self._tracebacks.get(key)
        if lines is None:
            lines = self._tracebacks[key] = traceback.format_tb(tb)
        return list(lines)

    # ---- the walk: generators instead of recursion, so depth is unbounded -----------------------

    def run(self, root: str) -> Verdict:
        stack: list[Generator[str, Verdict | None, Verdict]] = [self._validate(root)]
        send: Verdict | None = None
        pending_exc: BaseException | None = None
        result: Verdict = (False, [])
        while stack:
            gen = stack[-1]
            try:
                if pending_exc is not None:
                    exc, pending_exc = pending_exc, None
                    child = gen.throw(exc)
                else:
                    child = gen.send(send)
            except StopIteration as stop:
                stack.pop()
                send = result = stop.value
                continue
            except Exception as exc:
                stack.pop()
                if not stack:
                    raise
                pending_exc = exc
                continue
            stack.append(self._validate(child))
            send = None
        return result

    def _validate(self, node_id: str) -> Generator[str, Verdict | None, Verdict]:
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in self.in_progress:
            raise DependencyCycleError(f"Dependency cycle detected at node '{node_id}'")
        self.in_progress.add(node_id)
        try:
            verdict = yield from self._check(node_id)
        finally:
            self.in_progress.discard(node_id)
        self.validated[node_id] = verdict
        return verdict

    # ---- one node --------------------------------------------------------------------------------

    def _class_of(self, node_id: str) -> type:
        class_type = self.prompt[node_id]["class_type"]
        cls = self.registry.get(class_type)
        if cls is None:
            raise KeyError(class_type)
        return cls

    def _plan(self, cls: type) -> tuple[dict[str, Any], CustomValidator | None, list[tuple[str, Any, str, dict, list]]]:
        """What validating a node of ``cls`` needs of the class, worked out once per class:
        its INPUT_TYPES, its custom validator, and ``(name, type, section, options, config)`` of
        each declared input."""
        plan = self._plans.get(cls)
        if plan is None:
            types = input_types(cls)
            inputs = []
            for name in declared_inputs(cls, types):
                info = input_info(cls, name, types)
                assert info is not None
                input_type, section, options = info
                inputs.append((name, input_type, section, options, [input_type, options]))
            plan = self._plans[cls] = (types, custom_validator(cls), inputs)
        return plan

    def _returns(self, cls: type) -> tuple[Any, ...]:
        outputs = self._outputs.get(cls)
        if outputs is None:
            declared = getattr(cls, "RETURN_TYPES", None)
            # a tuple subclass is kept as is: its own __getitem__ decides which indexes answer
            outputs = self._outputs[cls] = declared if isinstance(declared, tuple) else return_types(cls)
        return outputs

    def _match(self, received: Any, input_type: Any) -> bool:
        if not (isinstance(received, str) and isinstance(input_type, str)):
            return types_match(received, input_type)
        pair = (received, input_type)
        hit = self._matches.get(pair)
        if hit is None:
            hit = self._matches[pair] = types_match(received, input_type)
        return hit

    def _check(self, node_id: str) -> Generator[str, Verdict | None, Verdict]:
        node = self.prompt[node_id]
        inputs = node.get("inputs")
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs of node '{node_id}' must be an object")
        cls = self._class_of(node_id)
        types, validator, plan = self._plan(cls)
        errors: list[ErrorDict] = []
        valid = True
        received_types: dict[str, Any] = {}
        deps = self.deps.setdefault(node_id, [])
        skip_type_check = validator is not None and "input_types" in validator.arg_names

        for name, input_type, section, options, input_config in plan:
            if name not in inputs:
                if section == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{name}",
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]

            if isinstance(value, list):
                if len(value) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            "details": f"{name}",
                            "extra_info": {
                                "input_name": name,
                                "input_config": input_config,
                                "received_value": value,
                            },
                        }
                    )
                    continue
                src_id = value[0]
                src_class = self.prompt[src_id]["class_type"]
                outputs = self._returns(self._class_of(src_id))
                received = _linked_type(src_id, src_class, value[1], outputs)
                received_types[name] = received
                if not skip_type_check and not self._match(received, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{name}, received_type({received}) mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": name,
                                "input_config": input_config,
                                "received_type": received,
                                "linked_node": value,
                            },
                        }
                    )
                    continue
                if src_id not in deps:
                    deps.append(src_id)
                try:
                    verdict = yield src_id
                    assert verdict is not None
                    if verdict[0] is False:
                        valid = False
                except DependencyCycleError:
                    raise
                except Exception as exc:
                    valid = False
                    self.validated[src_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(exc),
                                "extra_info": {
                                    "input_name": name,
                                    "input_config": input_config,
                                    "exception_message": str(exc),
                                    "exception_type": _full_type_name(exc),
                                    "traceback": self.format_tb(exc.__traceback__),
                                    "linked_node": value,
                                },
                            }
                        ],
                    )
                continue

            error = self._check_constant(inputs, name, value, input_type, input_config, options, validator)
            if error is not None:
                errors.append(error)

        if validator is not None and (validator.arg_names or validator.has_kwargs):
            data, linked = self._input_data(node_id, cls, types, inputs)
            filtered = {k: v for k, v in data.items() if validator.wants(k)}
            custom = _call_validator(cls, validator, filtered, received_types, self.awaits.run)
            if custom:
                # A validator naming ``input_types`` judges linked inputs by their types, now.
                if "input_types" not in validator.arg_names and any(k in linked for k in filtered):
                    self.deferred[node_id] = custom
                else:
                    errors.extend(custom)

        if errors or not valid:
            return (False, errors)
        return (True, [])

    def _check_constant(
        self,
        inputs: dict[str, Any],
        name: str,
        value: Any,
        input_type: Any,
        input_config: list[Any],
        options: dict[str, Any],
        validator: CustomValidator | None,
    ) -> ErrorDict | None:
        try:
            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
                inputs[name] = value
            convert = _CONVERT.get(input_type) if isinstance(input_type, str) else None
            if convert is not None:
                value = convert(value)
                inputs[name] = value
        except Exception as exc:
            return {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {input_type} value",
                "details": f"{name}, {value}, {exc}",
                "extra_info": {
                    "input_name": name,
                    "input_config": input_config,
                    "received_value": value,
                    "exception_message": str(exc),
                },
            }
        if validator is not None and validator.wants(name):
            return None
        if "min" in options and value < options["min"]:
            return {
                "type": "value_smaller_than_min",
                "message": f"Value {value} smaller than min of {options['min']}",
                "details": f"{name}",
                "extra_info": {"input_name": name, "input_config": input_config, "received_value": value},
            }
        if "max" in options and value > options["max"]:
            return {
                "type": "value_bigger_than_max",
                "message": f"Value {value} bigger than max of {options['max']}",
                "details": f"{name}",
                "extra_info": {"input_name": name, "input_config": input_config, "received_value": value},
            }
        if isinstance(input_type, list) and value not in input_type:
            config: list[Any] | None = input_config
            if len(input_type) > _MAX_LISTED_COMBO:
                listed = f"(list of length {len(input_type)})"
                config = None
            else:
                listed = str(input_type)
            return {
                "type": "value_not_in_list",
                "message": "Value not in list",
                "details": f"{name}: '{value}' not in {listed}",
                "extra_info": {"input_name": name, "input_config": config, "received_value": value},
            }
        return None

    def _input_data(
        self, node_id: str, cls: type, types: dict[str, Any], inputs: dict[str, Any]
    ) -> tuple[dict[str, list[Any]], set[str]]:
        """ComfyUI's ``get_input_data`` without results: links are ``[None]`` (rawLink ones the link)."""
        data: dict[str, list[Any]] = {}
        linked: set[str] = set()
        for name, value in inputs.items():
            info = input_info(cls, name, types)
            raw_link = info is not None and bool(info[2].get("rawLink", False))
            if is_link(value) and not raw_link:
                data[name] = [None]
                linked.add(name)
            elif info is not None:
                data[name] = [value]
        if not is_v3(cls):  # V3 nodes get hidden values as cls.hidden, not as arguments
            hidden_values: dict[str, Any] = {"PROMPT": {}, "UNIQUE_ID": node_id}
            for name, kind in hidden_inputs(cls, types).items():
                if kind in HIDDEN_KINDS:
                    data[name] = [hidden_values.get(kind)]
        return data, linked


def _closure(root: str, deps: Mapping[str, list[str]]) -> list[str]:
    """``root`` and every node it depends on, each once, in a fixed order."""
    seen = {root}
    order = [root]
    stack = [root]
    while stack:
        for src in deps.get(stack.pop(), ()):
            if src not in seen:
                seen.add(src)
                order.append(src)
                stack.append(src)
    return order


def validate_prompt(
    prompt: dict[str, Any],
    registry: NodeRegistry,
    partial_execution_targets: list[str] | None = None,
) -> ValidationResult:
    """Validate an API-format prompt like ComfyUI's ``execution.validate_prompt`` (see module doc).

    Mutates ``prompt``: converted constants and unwrapped ``__value__`` lists are written back.
    """
    with memoized():
        return _validate_prompt(prompt, registry, partial_execution_targets)


def _validate_prompt(
    prompt: dict[str, Any],
    registry: NodeRegistry,
    partial_execution_targets: list[str] | None,
) -> ValidationResult:
    if not isinstance(prompt, dict):
        return _failure(
            _graph_error("invalid_prompt", "Cannot execute because the prompt is not an object.", "")
        )
    targets = None if partial_execution_targets is None else set(partial_execution_targets)
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _failure(
                _graph_error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                )
            )
        class_type = node["class_type"]
        cls = registry.get(class_type) if isinstance(class_type, str) else None
        if cls is None:
            hint = registry.missing_hint(class_type) if isinstance(class_type, str) else None
            return _failure(
                _graph_error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{node_id}'" + (f": {hint}" if hint else ""),
                )
            )
        if is_output_node(cls) and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return _failure(_graph_error("prompt_no_outputs", "Prompt has no outputs", ""))

    validator = _Validator(prompt, registry)
    good: list[str] = []
    failed: list[tuple[str, list[ErrorDict]]] = []
    node_errors: dict[str, Any] = {}
    positions: dict[str, int] = {}  # node -> its place in validator.validated (insertion order)
    try:
        for output in outputs:
            try:
                ok, reasons = validator.run(output)
            except Exception as exc:
                ok = False
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(exc),
                        "extra_info": {
                            "exception_type": _full_type_name(exc),
                            "traceback": validator.format_tb(exc.__traceback__),
                        },
                    }
                ]
                validator.validated[output] = (False, reasons)
            if ok:
                good.append(output)
                continue
            failed.append((output, reasons))
            logged = len(failed) <= LOGGED_FAILURES  # a prompt of 20,000 broken outputs: not 40,000 log lines
            if logged:
                log.warning("Failed to validate prompt for output %s", output)
            # this output's own subtree only (not every node validated so far: that made a prompt
            # of many failing outputs quadratic), in the order nodes were validated (ComfyUI's order)
            new = len(validator.validated) - len(positions)
            for node_id in reversed(list(itertools.islice(reversed(validator.validated), new))):
                positions[node_id] = len(positions)
            subtree = [n for n in _closure(output, validator.deps) if n in positions]
            for node_id in sorted(subtree, key=positions.__getitem__):
                node_ok, node_reasons = validator.validated[node_id]
                # Nodes invalid only because something upstream is invalid have no reasons: no entry.
                if node_ok or not node_reasons:
                    continue
                entry = node_errors.get(node_id)
                if entry is None:
                    entry = node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                    for reason in node_reasons if logged else ():
                        log.warning(
                            "* %s %s: %s: %s",
                            prompt[node_id]["class_type"],
                            node_id,
                            reason["message"],
                            reason["details"],
                        )
                entry["dependent_outputs"].append(output)
    finally:
        validator.awaits.close()
    if len(failed) > LOGGED_FAILURES:
        log.warning("... and %d more outputs failed validation", len(failed) - LOGGED_FAILURES)

    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, reasons in failed for e in reasons)
        error = _graph_error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
        result = _failure(error, node_errors)
        result.deferred_validation = validator.deferred
        return result
    return ValidationResult(
        ok=True, error=None, outputs=good, node_errors=node_errors, deferred_validation=validator.deferred
    )
