"""The AsyncAPI 3.0 document of a service's events, built from the published language
(care_shared.contracts), served at `/asyncapi.json` beside `/openapi.json`."""

from __future__ import annotations

from typing import Any

from care_shared.contracts import _REGISTRY
from care_shared.envelope import EventType

REF = "#/components/schemas/{model}"


def _envelope_schema(data_ref: str, event_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0, structured JSON mode",
        "required": ["specversion", "id", "source", "type", "subject", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "UUIDv7"},
            "source": {"type": "string"},
            "type": {"const": event_type},
            "subject": {"type": "string", "description": "patient (or clinic) id"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "traceparent": {"type": "string", "description": "W3C trace context"},
            "sequence": {"type": "integer", "description": "version of the event in its stream"},
            "clinicid": {"type": "string", "description": "the clinic that owns the patient"},
            "data": {"$ref": data_ref},
        },
    }


def asyncapi_document(service: str, title: str, subscriptions: dict[str, str]) -> dict[str, Any]:
    """`subscriptions`: durable consumer name -> subject filter."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for full, model in sorted(_REGISTRY.items()):
        t = EventType(full)
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        message_id = f"{t.service}.{t.name}.v{t.version}"
        messages[message_id] = {
            "name": full,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().split("\n")[0] or full,
            "contentType": "application/cloudevents+json",
            "headers": {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "description": "= event id"}},
            },
            "payload": _envelope_schema(REF.format(model=model.__name__), full),
        }
        if t.service == service:
            channel = f"{t.service}.{t.name}"
            channels[channel] = {
                "address": f"{t.service}.{t.name}.{{subject}}",
                "parameters": {"subject": {"description": "patient (or clinic) id"}},
                "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            }
            operations[f"publish.{channel}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel}"},
            }
    for durable, subject in subscriptions.items():
        upstream = subject.split(".")[0]
        channel = f"consume.{durable}"
        channels[channel] = {
            "address": subject,
            "description": f"durable pull consumer `{durable}`",
            "messages": {
                mid: {"$ref": f"#/components/messages/{mid}"}
                for mid in messages
                if mid.startswith(upstream + ".")
            },
        }
        operations[durable] = {"action": "receive", "channel": {"$ref": f"#/channels/{channel}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": f"Events {service} publishes and consumes on NATS JetStream",
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {"nats": {"host": "nats:4222", "protocol": "nats"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
