"""Built-in node types: FunctionNode, TemplateNode, LLMAgentNode."""

from __future__ import annotations

import inspect
import string
import types
import typing
from typing import Any

from nexus_sse.exceptions import WorkflowDefinitionError
from nexus_sse.workflows.nodes import BaseNode, Param, get_function, invoke, register_node
from nexus_sse.workflows.runtime import NodeContext

_ANNOTATION_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}
_ANNOTATION_NAMES = {t.__name__: name for t, name in _ANNOTATION_TYPES.items()}


def annotation_type(ann: Any) -> tuple[str | None, bool]:
    """``(JSON type, accepts None)`` of a parameter annotation: ``dict | None`` is ``("object", True)``.

    ``X | None`` and ``Optional[X]`` give X's type; ``list[str]`` and ``dict[str, Any]`` their container's.
    Anything else (``int | str``, an unknown name) gives no type, so any value passes.
    """
    if isinstance(ann, str):  # not resolvable by get_type_hints: read the simple spellings
        text = ann.replace(" ", "")
        if text.startswith(("Optional[", "typing.Optional[")) and text.endswith("]"):
            text = text[text.index("[") + 1 : -1] + "|None"
        parts = [part for part in _split_union(text) if part not in ("None", "NoneType")]
        nullable = len(parts) < len(_split_union(text))
        return (_ANNOTATION_NAMES.get(parts[0].split("[", 1)[0]) if len(parts) == 1 else None), nullable
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        rest = [a for a in args if a is not type(None)]
        json_type = annotation_type(rest[0])[0] if len(rest) == 1 else None
        return json_type, len(rest) < len(args)
    return _ANNOTATION_TYPES.get(typing.get_origin(ann) or ann), False


def _split_union(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


@register_node
class FunctionNode(BaseNode):
    """Call a registered Python callable (see ``nexus_sse.register_function``).

    Its parameters become the node's inputs; a parameter named ``ctx`` receives the NodeContext.
    Sync callables run in a worker thread. A dict return value is the node's outputs; anything
    else becomes ``{"result": value}``.
    """

    type_name = "FunctionNode"
    config_keys = frozenset({"function"})

    def check_config(self) -> None:
        name = self.config.get("function")
        if not isinstance(name, str):
            raise WorkflowDefinitionError(
                f"node {self.node_id!r}: config 'function' must name a registered function",
                path=f"nodes.{self.node_id}.config.function",
            )
        try:
            self.func = get_function(name)
        except WorkflowDefinitionError as exc:  # name the config key, not the node type
            exc.path = f"nodes.{self.node_id}.config.function"
            raise
        self.params = self._params_of(self.func)
        self.wants_ctx = "ctx" in inspect.signature(self.func).parameters
        super().check_config()

    @staticmethod
    def _params_of(func: Any) -> dict[str, Param]:
        try:  # resolve string annotations (from __future__ import annotations)
            hints = typing.get_type_hints(func)
        except Exception:
            hints = {}
        params = {}
        for p in inspect.signature(func).parameters.values():
            if p.name == "ctx" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            json_type, nullable = annotation_type(hints.get(p.name, p.annotation))
            required = p.default is p.empty
            params[p.name] = Param(
                type=json_type, required=required, default=None if required else p.default, nullable=nullable
            )
        return params

    async def execute(self, ctx: NodeContext, inputs: dict[str, Any]) -> dict[str, Any]:
        kwargs = {**inputs, "ctx": ctx} if self.wants_ctx else inputs
        result = await invoke(self.func, **kwargs)
        return result if isinstance(result, dict) else {"result": result}


@register_node
class TemplateNode(BaseNode):
    """Format a ``str.format`` template; each ``{field}`` is a string input. Output: ``{"result": text}``.

    Fields must be plain names (no attribute or index access), so a template from the admin cannot
    reach into Python objects.
    """

    type_name = "TemplateNode"
    config_keys = frozenset({"template"})

    def check_config(self) -> None:
        template = self.config.get("template")
        if not isinstance(template, str):
            raise WorkflowDefinitionError(
                f"node {self.node_id!r}: config 'template' must be a string",
                path=f"nodes.{self.node_id}.config.template",
            )
        fields: dict[str, Param] = {}
        # A format spec may hold fields of its own ("{x:{y.__class__}}"), which str.format fills in too.
        pending = [template]
        try:
            while pending:
                for _, name, spec, _ in string.Formatter().parse(pending.pop()):
                    if name is None:
                        continue
                    if not name.isidentifier():
                        raise WorkflowDefinitionError(
                            f"node {self.node_id!r}: template field {{{name}}} must be a plain name",
                            path=f"nodes.{self.node_id}.config.template",
                        )
                    fields[name] = Param(required=True)
                    if spec:
                        pending.append(spec)
        except ValueError as exc:
            raise WorkflowDefinitionError(
                f"node {self.node_id!r}: bad template: {exc}", path=f"nodes.{self.node_id}.config.template"
            ) from None
        self.params = fields
        super().check_config()

    async def run(self, ctx: NodeContext, **inputs: Any) -> dict[str, Any]:
        return {"result": self.config["template"].format(**inputs)}


@register_node
class LLMAgentNode(BaseNode):
    """Ask a language model and stream its reply as ``token`` events.

    Config (Kailash's): ``model``, ``system_prompt``, ``temperature``, ``max_tokens``, plus ``provider``
    (an alias from NEXUS_SSE["LLM_PROVIDERS"]). Inputs: ``message`` (or ``user_message`` / ``prompt``)
    and an optional ``messages`` history of ``{"role", "content"}``. Output: ``{"response", "metadata"}``.
    """

    type_name = "LLMAgentNode"
    params = {
        "message": Param(type="string", description="The user's new message."),
        "user_message": Param(type="string", description="Alias of message."),
        "prompt": Param(type="string", description="Alias of message."),
        "messages": Param(type="array", description="Conversation history: [{role, content}, ...]."),
    }
    requires_one_of = ("message", "user_message", "prompt", "messages")
    config_keys = frozenset({"model", "system_prompt", "temperature", "max_tokens", "provider", "timeout"})

    def check_config(self) -> None:
        super().check_config()
        c = self.config
        checks = [
            ("model", isinstance(c.get("model", ""), str)),
            ("system_prompt", isinstance(c.get("system_prompt", ""), str)),
            ("provider", isinstance(c.get("provider", ""), str)),
            ("temperature", _number(c.get("temperature", 0)) and 0 <= c.get("temperature", 0) <= 2),
            ("max_tokens", c.get("max_tokens") is None or (_int(c["max_tokens"]) and c["max_tokens"] > 0)),
            ("timeout", c.get("timeout") is None or (_number(c["timeout"]) and c["timeout"] > 0)),
        ]
        for key, ok in checks:
            if not ok:
                raise WorkflowDefinitionError(
                    f"node {self.node_id!r}: invalid config {key!r}",
                    path=f"nodes.{self.node_id}.config.{key}",
                )

    def conversation(self, inputs: dict[str, Any]) -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        if self.config.get("system_prompt"):
            messages.append({"role": "system", "content": self.config["system_prompt"]})
        for item in inputs.get("messages") or []:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("content"), str)
                and item.get("role") in ("user", "assistant", "system")
            ):
                from nexus_sse.exceptions import ValidationError

                raise ValidationError(
                    "each message needs a role (user/assistant/system) and string content",
                    path="inputs.messages",
                )
            messages.append({"role": item["role"], "content": item["content"]})
        new = inputs.get("message") or inputs.get("user_message") or inputs.get("prompt")
        if new:
            messages.append({"role": "user", "content": new})
        return messages

    async def run(self, ctx: NodeContext, **inputs: Any) -> dict[str, Any]:
        from nexus_sse.llm import get_provider

        provider = get_provider(self.config.get("provider"))
        model = self.config.get("model")
        chunks = provider.stream(
            model=model,
            messages=self.conversation(inputs),
            temperature=self.config.get("temperature"),
            max_tokens=self.config.get("max_tokens"),
            timeout=self.config.get("timeout"),
        )
        parts: list[str] = []
        usage: dict[str, Any] | None = None
        async for chunk in chunks:
            if chunk.delta:
                parts.append(chunk.delta)
                await ctx.token(chunk.delta)
            if chunk.usage:
                usage = chunk.usage
        metadata: dict[str, Any] = {
            "provider": provider.name,
            "model": model or provider.default_model,
        }
        if usage:
            metadata["usage"] = usage
        return {"response": "".join(parts), "metadata": metadata}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
