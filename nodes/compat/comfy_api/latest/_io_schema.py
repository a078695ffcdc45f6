"""V3 schema: ``Schema``, ``Hidden``, ``HiddenHolder`` and ``NodeOutput``.

:meth:`Schema.v1_inputs` gives the V1 ``INPUT_TYPES`` form our validator and executor read, and
:meth:`Schema.get_v1_info` the ``/object_info`` entry (spec §3, V3 rules: every key present,
hidden inputs as ``{"unique_id": ["UNIQUE_ID"]}``, options dicts always present).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from nodes.compat.comfy_api.latest._io_inputs import Input, Output

# ---- hidden inputs and outputs ---------------------------------------------------------------------


class Hidden(StrEnum):
    """Hidden values a node may ask for (name -> ``INPUT_TYPES`` hidden type)."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"


class HiddenHolder:
    """``cls.hidden`` of a V3 node during a call; every attribute not given reads as None."""

    def __init__(
        self,
        unique_id: str | None = None,
        prompt: Any = None,
        extra_pnginfo: Any = None,
        dynprompt: Any = None,
        auth_token_comfy_org: str | None = None,
        api_key_comfy_org: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.unique_id = unique_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org = auth_token_comfy_org
        self.api_key_comfy_org = api_key_comfy_org
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return None

    @classmethod
    def from_dict(cls, d: dict[Any, Any] | None) -> HiddenHolder:
        """Keys may be :class:`Hidden` members, their names or their values."""
        values: dict[str, Any] = {}
        for key, value in (d or {}).items():
            member = _hidden_member(key)
            values[member.name if member is not None else str(key)] = value
        return cls(**values)

    def __repr__(self) -> str:
        return f"HiddenHolder({self.__dict__!r})"


def _hidden_member(key: Any) -> Hidden | None:
    if isinstance(key, Hidden):
        return key
    for member in Hidden:
        if key == member.name or key == member.value:
            return member
    return None


class NodeOutput:
    """What ``execute`` returns: output values, plus optional ``ui``, ``expand`` or ``block_execution``."""

    def __init__(self, *args: Any, ui: Any = None, expand: Any = None, block_execution: str | None = None) -> None:
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self) -> tuple[Any, ...] | None:
        return self.args if self.args else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeOutput:
        return cls(*(data.get("result") or ()), ui=data.get("ui"), expand=data.get("expand"))

    def __getitem__(self, index: int) -> Any:
        return self.args[index]

    def __repr__(self) -> str:
        return f"NodeOutput(args={self.args!r}, ui={self.ui!r}, expand={self.expand!r})"


# ---- schema ----------------------------------------------------------------------------------------


def _hidden_key(input_ids: set[str], member: Hidden) -> str:
    """The ``INPUT_TYPES`` hidden key of ``member``: its name, unless an input already has that name."""
    return member.name if member.name not in input_ids else f"__hidden_{member.name}"


def _type_name(io_type: Any) -> Any:
    return io_type if isinstance(io_type, str) else "COMBO"


@dataclass
class Schema:
    """Definition of a V3 node."""

    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False
    # Accepted from newer upstream schemas; not part of 0.3.64's /object_info.
    search_aliases: list[str] | None = None
    essentials_category: str | None = None
    is_dev_only: bool = False
    has_intermediate_output: bool = False
    price_badge: Any = None

    def __post_init__(self) -> None:
        self.inputs = list(self.inputs or [])
        self.outputs = list(self.outputs or [])
        members = [_hidden_member(h) for h in (self.hidden or [])]
        self.hidden = [member for member in members if member is not None]
        if self.category is None:
            self.category = "sd"
        if self.description is None:
            self.description = ""

    def validate(self) -> None:
        """Input ids and output ids must be unique, within and across the two lists."""
        input_ids = [i.id for i in self.inputs]
        output_ids = [o.id for o in self.outputs if o.id is not None]
        problems = []
        dup_in = sorted({i for i in input_ids if input_ids.count(i) > 1})
        dup_out = sorted({o for o in output_ids if output_ids.count(o) > 1})
        if dup_in:
            problems.append(f"Input ids must be unique, but {dup_in} are not.")
        if dup_out:
            problems.append(f"Output ids must be unique, but {dup_out} are not.")
        both = sorted(set(input_ids) & set(output_ids))
        if both:
            problems.append(f"Ids must be unique between inputs and outputs, but {both} are not.")
        if problems:
            raise ValueError(f"{self.node_id}: " + " ".join(problems))

    def finalize(self) -> None:
        """Add the hidden inputs implied by the flags; give outputs without ids default ids."""
        wanted: list[Hidden] = []
        if self.is_api_node:
            wanted += [Hidden.auth_token_comfy_org, Hidden.api_key_comfy_org]
        if self.is_output_node:
            wanted += [Hidden.prompt, Hidden.extra_pnginfo]
        for member in wanted:
            if member not in self.hidden:
                self.hidden.append(member)
        for index, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{index}_{_type_name(output.io_type)}_"

    @property
    def input_ids(self) -> set[str]:
        return {i.id for i in self.inputs}

    def hidden_key(self, member: Hidden) -> str:
        return _hidden_key(self.input_ids, member)

    def v1_inputs(self, hidden_style: Literal["v1", "info"] = "v1") -> dict[str, dict[str, Any]]:
        """``INPUT_TYPES`` form (``"v1"``: hidden as bare strings) or ``/object_info`` form (``"info"``)."""
        sections: dict[str, dict[str, Any]] = {"required": {}}
        for item in self.inputs:
            options = item.as_dict()
            options.pop("optional", None)
            section = "optional" if item.optional else "required"
            sections.setdefault(section, {})[item.id] = (item.get_io_type(), options)
        if self.hidden:
            ids = self.input_ids
            hidden = sections.setdefault("hidden", {})
            for member in self.hidden:
                if hidden_style == "v1":
                    hidden[_hidden_key(ids, member)] = member.value
                else:
                    hidden[member.name] = [member.value]
        return sections

    def get_v1_info(self, cls: type | None = None) -> dict[str, Any]:
        """The ``/object_info`` entry (spec §3, V3 rules: every key present)."""
        inputs = {
            section: {name: [str(entry[0]) if isinstance(entry[0], str) else entry[0], entry[1]]
                      if isinstance(entry, tuple) else entry for name, entry in values.items()}
            for section, values in self.v1_inputs("info").items()
        }
        return {
            "input": inputs,
            "input_order": {section: list(values) for section, values in inputs.items()},
            "output": [str(t) if isinstance(t, str) else t for t in (o.get_io_type() for o in self.outputs)],
            "output_is_list": [bool(o.is_output_list) for o in self.outputs],
            "output_name": [o.display_name or str(_type_name(o.io_type)) for o in self.outputs],
            "output_tooltips": [o.tooltip or None for o in self.outputs],
            "name": self.node_id,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", None) or "nodes",
            "category": self.category,
            "output_node": bool(self.is_output_node),
            "deprecated": bool(self.is_deprecated),
            "experimental": bool(self.is_experimental),
            "api_node": bool(self.is_api_node),
        }
