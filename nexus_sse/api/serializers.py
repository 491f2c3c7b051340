"""Serializers of the REST API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from nexus_sse import registry
from nexus_sse.access import POLICY_FIELDS
from nexus_sse.exceptions import NexusError
from nexus_sse.models import Run, RunEvent, Workflow, workflow_errors


class WorkflowSerializer(serializers.ModelSerializer):
    """A workflow; ``definition`` is validated against the node registry (admin workflows only)."""

    effective_input_schema = serializers.SerializerMethodField(
        help_text="The JSON Schema inputs are checked against."
    )

    class Meta:
        model = Workflow
        fields = [
            "slug",
            "name",
            "version",
            "description",
            "source",
            "is_active",
            "access",
            "permission",
            "rate_limit",
            "definition",
            "input_schema",
            "effective_input_schema",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["source", "created_at", "updated_at"]

    def get_effective_input_schema(self, obj: Workflow) -> dict[str, Any] | None:
        try:
            return registry.graph_for(obj).input_schema
        except NexusError:
            return None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        if instance is not None and instance.source == Workflow.Source.CODE:
            locked = sorted(k for k in attrs if k not in POLICY_FIELDS and getattr(instance, k) != attrs[k])
            if locked:
                raise serializers.ValidationError(
                    {locked[0]: "defined in code: only is_active and the policy fields can change here"}
                )
        merged = {
            f: attrs.get(f, getattr(instance, f, ""))
            for f in ("source", "access", "permission", "definition")
        }
        if instance is None:
            merged["source"] = Workflow.Source.ADMIN
        errors = workflow_errors(**merged)
        if errors:
            field, message = next(iter(errors.items()))
            if field == "definition" and " (at " in message:  # name the failing path, as the engine does
                message, _, path = message.rpartition(" (at ")
                field = f"definition.{path.rstrip(')')}"
            raise serializers.ValidationError({field: message})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Workflow:
        validated_data["source"] = Workflow.Source.ADMIN
        return super().create(validated_data)


class RunEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunEvent
        fields = ["seq", "event", "data", "created_at"]


class RunSerializer(serializers.ModelSerializer):
    """A run in listings."""

    run_id = serializers.UUIDField(source="id", read_only=True)
    workflow_id: serializers.SlugRelatedField[Workflow] = serializers.SlugRelatedField(
        source="workflow", slug_field="slug", read_only=True
    )

    class Meta:
        model = Run
        fields = [
            "run_id",
            "workflow_id",
            "workflow_version",
            "status",
            "mode",
            "error",
            "error_type",
            "created_at",
            "started_at",
            "finished_at",
            "execution_time",
        ]


class RunDetailSerializer(RunSerializer):
    """A run with its inputs, result and archived events."""

    events = RunEventSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "inputs", "result", "outputs", "events"]


class StreamTokenRequestSerializer(serializers.Serializer):
    """Ask for a stream token bound to one workflow or one run."""

    workflow = serializers.SlugField(required=False)
    run = serializers.UUIDField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("workflow" in attrs) == ("run" in attrs):
            raise serializers.ValidationError({"workflow": "give exactly one of workflow or run"})
        return attrs


class StreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds.")
    url = serializers.CharField(help_text="The stream URL with the token, for EventSource.")
