"""Human-readable outputs of training: rich tables on the console and the model card."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from moe_app.labels import LABELS, MODALITIES
from moe_app.model.experts import EXPERTS

COLS = ("accuracy", "macro_auroc", "macro_f1", "ece", "n")


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def metric_rows(m: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(row name, metric dict) for every model variant in a metrics.json."""
    rows = [("MoE (top-k), all modalities", m["moe"]["all"])]
    rows += [(f"MoE without {mod}", m["moe"][f"without_{mod}"]) for mod in MODALITIES]
    if "dense" in m:
        rows.append(("Dense baseline, all modalities", m["dense"]["all"]))
        rows += [(f"Dense without {mod}", m["dense"][f"without_{mod}"]) for mod in MODALITIES]
    for mod, r in m.get("single_modality", {}).items():
        rows.append((f"{mod}-only model (all test cases)", r["all"]))
        rows.append((f"{mod}-only model (cases with {mod})", r["with_modality_only"]))
    return rows


def tables(m: dict[str, Any]) -> list[Table]:
    out = []
    t = Table(title="Test split: overall")
    t.add_column("model")
    for c in COLS:
        t.add_column(c, justify="right")
    for name, r in metric_rows(m):
        t.add_row(name, *[_fmt(r.get(c)) for c in COLS])
    out.append(t)
    t = Table(title="Test split: per-class sensitivity / specificity (MoE, all modalities)")
    t.add_column("class")
    t.add_column("sensitivity", justify="right")
    t.add_column("specificity", justify="right")
    for label in LABELS:
        t.add_row(label, _fmt(m["moe"]["all"][f"sens_{label}"]), _fmt(m["moe"]["all"][f"spec_{label}"]))
    out.append(t)
    routing, params = m["moe"]["routing"], m["moe"]["parameters"]
    t = Table(title=f"Experts (gate entropy {routing['gate_entropy_nats']:.3f} nats)")
    for c in ("expert", "modality", "parameters", "utilisation", "mean weight"):
        t.add_column(c, justify="left" if c in ("expert", "modality") else "right")
    for name, util in routing["utilisation"].items():
        t.add_row(name, EXPERTS[name].modality, f"{params['experts'][name]:,}", _fmt(util),
                  _fmt(routing["mean_weight"][name]))
    out.append(t)
    groups = sorted(next(iter(routing["weight_by_class"].values())))
    t = Table(title="Share of gate weight by true class and expert modality")
    t.add_column("true class")
    for g in groups:
        t.add_column(g, justify="right")
    for label, row in routing["weight_by_class"].items():
        t.add_row(label, *[_fmt(row[g]) for g in groups])
    out.append(t)
    return out


def print_report(m: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for t in tables(m):
        console.print(t)
    p = m["moe"]["parameters"]
    console.print(f"expert parameters: total {p['experts_total']:,}; active per case mean {p['active_mean']:,.0f} "
                  f"({p['active_share_mean']:.1%}), max {p['active_max']:,.0f} ({p['active_share_max']:.1%}); "
                  f"gate {p['gate']:,}; frozen {p['frozen']:,}")
    if "abstention" in m:
        a = m["abstention"]
        console.print(f"abstention: uncertain if calibrated max probability < {a['threshold']:.3f}; "
                      f"test coverage {a['test_coverage']:.3f}, accuracy on kept {a['test_accuracy_kept']:.3f}")
    if "temperature" in m:
        console.print(f"temperature {m['temperature']:.3f} (gate {m.get('gate_temperature', 1.0):.3f}); training time {m.get('train_seconds_total', 0) / 60:.1f} min "
                      f"on {m.get('torch_threads')} threads")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def model_card(m: dict[str, Any], reproduce: str) -> str:
    """The model card (markdown) from a metrics dictionary."""
    cfg, p, a = m["config"], m["moe"]["parameters"], m["abstention"]
    routing = m["moe"]["routing"]
    experts = _md_table(["expert", "modality", "parameters", "test utilisation", "description"], [
        [n, EXPERTS[n].modality, f"{p['experts'][n]:,}", _fmt(routing["utilisation"][n]), EXPERTS[n].description]
        for n in cfg["experts"]])
    overall = _md_table(["model", *COLS], [[name, *[_fmt(r.get(c)) for c in COLS]] for name, r in metric_rows(m)])
    per_class = _md_table(["class", "sensitivity", "specificity"], [
        [lab, _fmt(m["moe"]["all"][f"sens_{lab}"]), _fmt(m["moe"]["all"][f"spec_{lab}"])] for lab in LABELS])
    groups = sorted(next(iter(routing["weight_by_class"].values())))
    by_class = _md_table(["true class", *groups], [[lab, *[_fmt(r[g]) for g in groups]]
                                                    for lab, r in routing["weight_by_class"].items()])
    data = m.get("data", {})
    enc = m.get("encoder_comparison")
    enc_md = "" if not enc else "\n## Report encoder comparison\n\n" + _md_table(
        ["candidate", "val accuracy (synthetic)", "hand-written accuracy", "seconds", "data"],
        [[k, _fmt(v["val_accuracy"]), _fmt(v["handwritten_accuracy"]), f"{v['seconds']:.0f}", v.get("data", "")]
         for k, v in enc.items()]) + "\n"
    cache_md = (f", after a one-off feature cache of {m['cache_seconds'] / 60:.1f} min"
                if m.get("cache_seconds") else "")
    hand = m.get("handwritten")
    hand_md = "" if not hand else (
        "\nShipped model on the hand-written reports (report only, "
        f"{hand['n']} reports): MoE accuracy {hand['moe']:.3f}; report_findings expert alone "
        f"{hand['report_findings']:.3f}; per class {hand['per_class']}.\n")
    return f"""# Model card: multimodal Mixture-of-Experts chest diagnosis (demo)

**Trained on synthetic data, not for clinical use.** This model has never seen a real patient.
It exists to demonstrate the workstation and the explanation tools.

## Intended use
Decision-support demonstration: given a chest radiograph (DICOM), a free-text report and/or
vitals/labs, it ranks five diagnoses ({", ".join(LABELS)}) and shows which experts decided.
Not a medical device; not validated on real data; outputs must not inform patient care.

## Data
{data.get("description", "Synthetic cases from `moe-app synth`.")}
Cases per split: {data.get("splits", "see metrics.json")}. Cases per label: {data.get("labels", "see metrics.json")}.
Missing modalities (share of cases): {data.get("missing", "see metrics.json")}.

## Architecture
A gating network ({"a one-hidden-layer MLP router (width " + str(cfg["gate_hidden"]) + ")" if cfg.get("gate_hidden") else "one linear router"} on cheap features: an {cfg["gate_thumb"]}x{cfg["gate_thumb"]} image
thumbnail, a bag-of-tokens embedding, the vitals vector and the modality-presence mask) picks the
top-{cfg["top_k"]} experts; experts whose modality is absent get weight 0. Output = sum of gate
weight x expert probability, so contributions add up exactly. Report encoder: `{cfg["text_encoder"]}`.
Calibration (fitted on validation): every expert's logits are divided by T = {m["temperature"]:.3f} and the gate's
logits by T_g = {m.get("gate_temperature", 1.0):.3f} (same experts selected; T_g < 1 shares their weight less evenly).
Expert parameters: {p["experts_total"]:,} in total; per case on average {p["active_mean"]:,.0f}
({p["active_share_mean"]:.1%}), at most {p["active_max"]:,.0f} ({p["active_share_max"]:.1%}).
Gate: {p["gate"]:,} parameters. Frozen pretrained parameters: {p["frozen"]:,}.

{experts}

## Abstention rule
A case is flagged **uncertain** when the calibrated top probability is below **{a["threshold"]:.4f}**
(threshold chosen on validation to keep {a["val_coverage"]:.1%} of cases; accuracy on kept validation
cases {a["val_accuracy_kept"]:.3f}). On the test split: coverage {a["test_coverage"]:.3f},
accuracy on kept cases {a["test_accuracy_kept"]:.3f}. The diagnosis is still shown, marked uncertain.

## Test-split metrics
{overall}

Per class (MoE, all modalities):

{per_class}

Share of gate weight by true class:

{by_class}

Gate entropy {routing["gate_entropy_nats"]:.3f} nats. Training time {m.get("train_seconds_total", 0) / 60:.1f} min wall
for all models above (MoE in one process, dense baseline and single-modality models in two
more, {m.get("torch_threads")} torch thread each, on a shared 2-core machine){cache_md}.
{enc_md}{hand_md}
## Targets (from the model issue)
{_md_table(["target", "measured", "met"], [[t, v, "yes" if ok else "**no**"] for t, v, ok in target_checks(m)])}

## Reproduce exactly
```
{reproduce}
```
Weights sha256: `{m.get("weights_sha256", "")}`.

## Limitations
Synthetic images, reports and vitals follow the generator's rules; real radiographs, real
reporting styles and real lab distributions differ. Performance on real data is unknown.
"""


def target_checks(m: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's targets, each as (target, measured value, met)."""
    moe, out = m["moe"], []
    a = moe["all"]
    out.append(("accuracy >= 0.92", f"{a['accuracy']:.3f}", a["accuracy"] >= 0.92))
    out.append(("macro AUROC >= 0.97", f"{a['macro_auroc']:.3f}", a["macro_auroc"] >= 0.97))
    worst = min(moe[f"without_{mod}"]["macro_auroc"] for mod in MODALITIES)
    out.append(("macro AUROC >= 0.90 with any modality removed", f"min {worst:.3f}", worst >= 0.90))
    out.append(("ECE <= 0.03 after calibration", f"{a['ece']:.3f}", a["ece"] <= 0.03))
    if "single_modality" in m:
        best = max(r["all"]["accuracy"] for r in m["single_modality"].values())
        out.append(("MoE >= 8 points above every single-modality model", f"+{100 * (a['accuracy'] - best):.1f}",
                    a["accuracy"] - best >= 0.08))
    if "dense" in m:
        gap = m["dense"]["all"]["accuracy"] - a["accuracy"]
        out.append(("within 1 point of the dense baseline", f"{-100 * gap:+.1f}", gap <= 0.01))
    p = moe["parameters"]
    out.append(("<= half the expert parameters per case", f"mean {p['active_share_mean']:.1%}, max {p['active_share_max']:.1%}",
                p["active_share_max"] <= 0.5))
    util = moe["routing"]["utilisation"]
    out.append(("no expert unused", f"min utilisation {min(util.values()):.3f}", min(util.values()) > 0))
    w = moe["routing"]["weight_by_class"]
    ptx, pe = w["pneumothorax"], w["pulmonary_embolism"]
    out.append(("image experts carry most weight on pneumothorax", f"image {ptx.get('image', 0):.2f} of 1",
                ptx.get("image", 0) >= max(v for k, v in ptx.items() if k != "image")))
    vr = pe.get("vitals", 0) + pe.get("report", 0)
    out.append(("vitals/report experts carry most weight on PE", f"vitals+report {vr:.2f} of 1", vr > 0.5))
    return out
