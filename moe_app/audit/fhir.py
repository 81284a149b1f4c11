"""One stored event -> one FHIR R4 AuditEvent resource (a plain dict, JSON-ready).

Shape (R4/R4B AuditEvent): `type`/`subtype` are DICOM (DCM) codings, `action` C/R/U/D/E,
`recorded`, `outcome` 0/4/8/12 with `outcomeDesc`; one `agent` (the user: name, role,
requestor, network address); `source` (site, observer = this app as a contained Device with
its version); `entity` = the case pseudonym (identifier only), the model as a contained Device
with version and weights hash, and the event's chain data and JSON payload as details.
"""

from __future__ import annotations

import ipaddress

from moe_app.audit.chain import canonical_json, iso_utc
from moe_app.audit.events import ACTIONS, DCM_SYSTEM, OUTCOMES, StoredEvent

ID_SYSTEM = "urn:moe-app"  # prefix of the identifier systems this app defines
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _network(address: str | None) -> dict[str, str] | None:
    if not address:
        return None
    try:
        ipaddress.ip_address(address)
        kind = "2"  # IP address
    except ValueError:
        kind = "1"  # machine name
    return {"address": address, "type": kind}


def _devices(event: StoredEvent) -> list[dict[str, object]]:
    app = {
        "resourceType": "Device",
        "id": "app",
        "deviceName": [{"name": "moe-app", "type": "model-name"}],
        "version": [{"value": event.app_version}],
    }
    devices: list[dict[str, object]] = [app]
    if event.model_version or event.model_weights_sha256:
        model: dict[str, object] = {
            "resourceType": "Device",
            "id": "model",
            "deviceName": [{"name": "moe-app diagnostic model", "type": "model-name"}],
        }
        if event.model_version:
            model["version"] = [{"value": event.model_version}]
        if event.model_weights_sha256:
            model["identifier"] = [
                {"system": f"{ID_SYSTEM}:weights-sha256", "value": event.model_weights_sha256}
            ]
        devices.append(model)
    return devices


def _entities(event: StoredEvent, has_model: bool) -> list[dict[str, object]]:
    entities: list[dict[str, object]] = []
    if event.case_pseudonym:
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": f"{ID_SYSTEM}:pseudonym",
                        "value": event.case_pseudonym,
                    }
                },
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient"),
                "name": "case (pseudonymised)",
            }
        )
    if has_model:
        entities.append(
            {
                "what": {"reference": "#model", "display": "diagnostic model"},
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
                "name": f"model {event.model_version or ''}".strip(),
            }
        )
    details = [
        ("seq", str(event.seq)),
        ("prev_hash", event.prev_hash),
        ("hash", event.hash),
        ("payload", canonical_json(event.payload)),
    ]
    if event.runtime:
        details.append(("runtime", event.runtime))
    entities.append(
        {
            "what": {"identifier": {"system": f"{ID_SYSTEM}:audit-seq", "value": str(event.seq)}},
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
            "name": "audit record",
            "detail": [{"type": name, "valueString": value} for name, value in details],
        }
    )
    return entities


def to_audit_event(event: StoredEvent) -> dict[str, object]:
    """The FHIR R4 AuditEvent for one stored event."""
    spec = ACTIONS[event.action]
    devices = _devices(event)
    agent: dict[str, object] = {
        "who": {"identifier": {"system": f"{ID_SYSTEM}:user", "value": event.actor}},
        "name": event.actor,
        "role": [{"text": event.actor_role}],
        "requestor": True,
    }
    network = _network(event.client_address)
    if network:
        agent["network"] = network
    resource: dict[str, object] = {
        "resourceType": "AuditEvent",
        "id": f"moe-audit-{event.seq}",
        "contained": devices,
        "type": _coding(DCM_SYSTEM, spec.type.code, spec.type.display),
        "action": event.action_code,
        "recorded": iso_utc(event.time),
        "outcome": str(event.outcome),
        "outcomeDesc": event.outcome_description or OUTCOMES[event.outcome],
        "agent": [agent],
        "source": {
            "site": event.source_site,
            "observer": {"reference": "#app", "display": f"moe-app {event.app_version}"},
            "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": _entities(event, has_model=len(devices) > 1),
    }
    subtypes = [_coding(f"{ID_SYSTEM}:action", event.action, event.action)]
    if spec.subtype:
        subtypes.insert(0, _coding(DCM_SYSTEM, spec.subtype.code, spec.subtype.display))
    resource["subtype"] = subtypes
    return resource
