"""Admin form for workflows: the model's validators and ``Workflow.clean`` do the checking."""

from __future__ import annotations

from django import forms

from nexus_sse.models import Workflow


class WorkflowForm(forms.ModelForm):
    """Refuse a definition that cannot be built (unknown node type, cycle, bad connection...), a bad
    rate, permission or input schema: each error shown on its field."""

    class Meta:
        model = Workflow
        # every editable field (tests/test_admin.py checks that none is missing)
        fields = [
            "slug",
            "name",
            "version",
            "description",
            "definition",
            "source",
            "is_active",
            "access",
            "permission",
            "rate_limit",
            "input_schema",
        ]
