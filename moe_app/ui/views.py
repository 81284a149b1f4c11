"""Pure view functions: a diagnosis -> what the result panels show (no gradio import)."""

from __future__ import annotations

import html
from typing import Any

from moe_app.labels import LABEL_TITLES, VITALS
from moe_app.prediction import Prediction

NOT_FOR_CLINICAL_USE = (
    "Research demonstration trained on synthetic data. **Not for clinical use**: "
    "do not base any diagnosis or treatment on it."
)


def diagnosis_markdown(pred: Prediction) -> str:
    """The headline: the diagnosis, or a plain 'uncertain, review' when the rule fires."""
    title = LABEL_TITLES.get(pred.diagnosis, pred.diagnosis)
    p = pred.probabilities[pred.diagnosis]
    if pred.uncertain:
        reason = f" ({pred.uncertainty_reason})" if pred.uncertainty_reason else ""
        head = (
            f"## ⚠ Uncertain — review needed\n"
            f"The model leans towards **{title}** ({p:.0%}) but is not confident{reason}. "
            "Treat this as a prompt for review, not as an answer."
        )
    else:
        head = f"## {title} — {p:.0%}"
    missing = [m for m, present in pred.modalities.items() if not present]
    lines = [head]
    if missing:
        lines.append(f"Missing from this case: {', '.join(missing)}.")
    decided = ", ".join(f"{name} ({pred.gating[name]:.2f})" for name in pred.selected_experts)
    lines.append(f"Decided by: {decided}.")
    return "\n\n".join(lines)


def runtime_markdown(pred: Prediction) -> str:
    device = "GPU" if "CUDA" in pred.runtime.upper() else "CPU"
    return f"Model {pred.model_version} · runtime {pred.runtime} ({device}) · {pred.latency_ms:.0f} ms"


def header_rows(header: dict[str, str]) -> list[list[str]]:
    return [[k, v] for k, v in sorted(header.items())]


def vitals_label(index: int) -> str:
    spec = VITALS[index]
    return f"{spec.title} ({spec.unit}) · ref {spec.ref_low:g}–{spec.ref_high:g}"


def audit_rows(events: list[Any]) -> list[list[Any]]:
    """Audit events -> table rows (time, user, action, pseudonym, diagnosis, model, outcome)."""
    rows = []
    for ev in events:
        payload = getattr(ev, "payload", {}) or {}
        pred = payload.get("prediction", {}) if isinstance(payload, dict) else {}
        fb = payload.get("agree") if isinstance(payload, dict) else None
        rows.append(
            [
                ev.id,
                ev.seq,
                ev.time.strftime("%Y-%m-%d %H:%M:%S") if hasattr(ev.time, "strftime") else str(ev.time),
                ev.actor,
                ev.action,
                ev.case_pseudonym or "",
                pred.get("diagnosis", ""),
                ev.model_version or "",
                "" if fb is None else ("agree" if fb else "disagree"),
                ev.outcome,
            ]
        )
    return rows


AUDIT_HEADERS = ["id", "seq", "time (UTC)", "user", "action", "pseudonym", "diagnosis", "model", "feedback", "outcome"]


def _bar_row(name: str, value: float, text: str) -> str:
    """A table row with a bar drawn in CSS, so the page prints without scripts or images."""
    width = max(0.0, min(1.0, value)) * 12
    return (
        f"<tr><td>{html.escape(name)}</td><td><span class=\"bar\" style=\"width:{width:.2f}em\"></span></td>"
        f"<td>{html.escape(text)}</td></tr>"
    )


def printable_html(pred: Prediction, pseudonym: str, summary: str, images: dict[str, str]) -> str:
    """A one-page print-ready report. `images` maps a caption to a data: URI (PNG)."""
    rows = "".join(
        _bar_row(LABEL_TITLES.get(k, k), v, f"{v:.1%}")
        for k, v in sorted(pred.probabilities.items(), key=lambda kv: -kv[1])
    )
    gates = "".join(_bar_row(k, v, f"{v:.2f}") for k, v in pred.gating.items() if v > 0)
    label = pred.diagnosis
    parts = "".join(
        _bar_row(name, pred.contributions[name][label], f"{pred.gating[name]:.2f} × {pred.experts[name].probabilities[label]:.2f} = {pred.contributions[name][label]:.3f}")
        for name in pred.selected_experts
        if name in pred.contributions and name in pred.experts
    )
    figs = "".join(
        f'<figure><img src="{uri}" alt="{html.escape(cap)}"><figcaption>{html.escape(cap)}</figcaption></figure>'
        for cap, uri in images.items()
    )
    head = "Uncertain — review needed" if pred.uncertain else LABEL_TITLES.get(pred.diagnosis, pred.diagnosis)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MoE workstation report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:50em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 8px}} figure{{display:inline-block;margin:0 1em 1em 0}}
img{{max-width:22em}} .warn{{border:2px solid #b00;padding:.5em;font-weight:bold}}
.bar{{display:inline-block;height:.8em;background:#c2410c;-webkit-print-color-adjust:exact;print-color-adjust:exact}}
@media print{{button{{display:none}}}}
</style></head><body>
<p class="warn">Research demonstration trained on synthetic data. Not for clinical use.</p>
<h1>{html.escape(head)}</h1>
<p>Case pseudonym: {html.escape(pseudonym)} · model {html.escape(pred.model_version)} · {html.escape(pred.runtime)}</p>
<h2>Probabilities</h2><table>{rows}</table>
<h2>Experts that decided (gate weights)</h2><table>{gates}</table>
<h2>How their votes add up to P({html.escape(LABEL_TITLES.get(label, label))})</h2><table>{parts}</table>
<h2>Summary</h2><p>{html.escape(summary)}</p>
{figs}
</body></html>"""
