"""Admin form for workflows: the JSON definition and input schema are validated like the API does."""

from __future__ import annotations

from typing import Any

from django import forms

from nexus_sse.access import RATE_RE
from nexus_sse.exceptions import NexusError
from nexus_sse.models import Workflow
from nexus_sse.workflows.builder import WorkflowBuilder
from nexus_sse.workflows.schema import check_schema


class WorkflowForm(forms.ModelForm):
    """Refuse a definition that cannot be built (unknown node type, cycle, bad connection...)."""

    class Meta:
        model = Workflow
        fields = "__all__"

    def clean_rate_limit(self) -> str:
        value = self.cleaned_data.get("rate_limit", "")
        if value and not RATE_RE.match(value):
            raise forms.ValidationError('A rate looks like "10/min" (per s, min, hour or day).')
        return value

    def clean_permission(self) -> str:
        value = self.cleaned_data.get("permission", "")
        if value and value.count(".") != 1:
            raise forms.ValidationError('Use "app_label.codename".')
        return value

    def clean_input_schema(self) -> Any:
        value = self.cleaned_data.get("input_schema")
        if value is not None:
            try:
                check_schema(value)
            except NexusError as exc:
                raise forms.ValidationError(exc.message) from None
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("access") == "permission" and not data.get("permission"):
            self.add_error("permission", 'Access "permission" needs a permission.')
        if "definition" in self.fields and "definition" in data:
            try:
                WorkflowBuilder.from_dict(data["definition"]).build()
            except NexusError as exc:
                where = f" (at {exc.path})" if exc.path else ""
                self.add_error("definition", f"{exc.message}{where}")
        return data
