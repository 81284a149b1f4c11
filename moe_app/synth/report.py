"""Free-text radiology reports composed from grammar fragments.

The report is a radiologist's read of the film (from the same `Findings` that drew it,
with a reader who misses or hedges faint findings) plus a clinical-history line drawn from
the patient's presentation. Section order, headings, abbreviations, negations, hedges and
spelling (British/American) vary, and some reports carry invented names, dates and numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moe_app.synth import report_phrases as P
from moe_app.synth.findings import Findings
from moe_app.synth.identity import Identity


@dataclass(frozen=True)
class ReportConfig:
    """Knobs of the reader and the history line."""

    p_specific_history: float = 0.25  # history line points at the true diagnosis
    p_decoy_history: float = 0.16  # history line points at another diagnosis
    p_equivocal: float = 0.35  # impression hedges and names a differential
    p_miss_subtle: float = 0.5  # a faint finding is not reported at all
    p_hedge_definite: float = 0.25  # a clear finding is still reported as uncertain
    p_hedge_ptx: float = 0.35  # a visible pneumothorax reported as uncertain (skin fold, bulla)
    p_miss_small_ptx: float = 0.3  # a small but visible pneumothorax not reported
    p_false_positive: float = 0.1  # the reader calls a soft finding the film does not show
    p_phi: float = 0.35  # the report carries names/dates/numbers to scrub


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _fill(rng: np.random.Generator, text: str, side: str = "right", zone: str = "lower", size: str = "") -> str:
    side_word = _pick(rng, P.SIDE_WORDS[side])
    return text.format(
        side=side_word, Side=side_word.capitalize(), zone=_pick(rng, P.ZONE_WORDS[zone]),
        size=size, ctr=f"0.{int(rng.integers(55, 70))}", rim=f"{rng.uniform(1, 4):.1f}",
    )


def _size_word(value: float, cuts: tuple[float, float]) -> str:
    return "small " if value < cuts[0] else ("moderate " if value < cuts[1] else "large ")


def _history(label: str, rng: np.random.Generator, cfg: ReportConfig, side: str) -> str:
    u = rng.random()
    if u < cfg.p_specific_history:
        text = _pick(rng, P.INDICATION[label])
    elif u < cfg.p_specific_history + cfg.p_decoy_history:
        others = [k for k in P.INDICATION if k != label]
        text = _pick(rng, P.INDICATION[_pick(rng, others)])
    else:
        text = _pick(rng, P.GENERIC_INDICATION)
    return _fill(rng, text, side=side)


def _read(f: Findings, rng: np.random.Generator, cfg: ReportConfig) -> tuple[list[str], list[str], set[str]]:
    """What the reader reports: (finding sentences, impression items, topics mentioned)."""
    found: list[str] = []
    impression: list[str] = []
    topics: set[str] = set()
    for c in f.consolidations:
        strong = c.density * c.extent >= 0.35
        if not strong and rng.random() < cfg.p_miss_subtle:
            continue
        topics.add("consolidation")
        if strong and rng.random() < cfg.p_hedge_definite:
            found.append(_fill(rng, _pick(rng, P.CONSOLIDATION_HEDGED), c.side, c.zone))
        elif strong:
            text = _fill(rng, _pick(rng, P.CONSOLIDATION_DEFINITE), c.side, c.zone, _size_word(c.extent, (0.6, 0.85)))
            if c.bronchograms and rng.random() < 0.7:
                text += " " + _pick(rng, P.BRONCHOGRAM)
            found.append(text)
            impression.append(_pick(rng, P.HEDGES) + _fill(rng, _pick(rng, P.PNEUMONIA_IMPRESSION), c.side, c.zone))
        else:
            found.append(_fill(rng, _pick(rng, P.CONSOLIDATION_HEDGED), c.side, c.zone))
    if f.heart_scale >= 1.2:
        topics.add("heart")
        found.append(_fill(rng, _pick(rng, P.CARDIOMEGALY)))
    elif f.heart_scale > 1.05 and rng.random() > cfg.p_miss_subtle:
        topics.add("heart")
        found.append(_pick(rng, P.BORDERLINE_HEART))
    eff_r, eff_l = f.effusion_right, f.effusion_left
    big = max(eff_r, eff_l)
    if eff_r > 0.05 and eff_l > 0.05:
        topics.add("effusion")
        found.append(_fill(rng, _pick(rng, P.BILATERAL_EFFUSION), size=_size_word(big, (0.1, 0.18))))
    elif big > 0:
        side = "right" if eff_r >= eff_l else "left"
        if big > 0.05:
            topics.add("effusion")
            found.append(_fill(rng, _pick(rng, P.EFFUSION), side, size=_size_word(big, (0.1, 0.18))))
        elif rng.random() > cfg.p_miss_subtle:
            topics.add("effusion")
            found.append(_fill(rng, _pick(rng, P.INCIDENTAL["effusion"]), side))
    if f.perihilar_haze >= 0.35 or (f.perihilar_haze > 0 and rng.random() > cfg.p_miss_subtle):
        topics.add("oedema")
        n = 1 + int(rng.integers(2))
        found.extend(str(x) for x in rng.choice(P.OEDEMA, size=n, replace=False))
    if topics & {"heart", "oedema"} and (f.heart_scale >= 1.2 or f.perihilar_haze >= 0.35):
        impression.append(_pick(rng, P.HEDGES) + _pick(rng, P.HF_IMPRESSION))
    if f.ptx_side is not None:
        size = _size_word(f.ptx_depth, (0.05, 0.09))
        u = rng.random()
        if f.ptx_visible and u < cfg.p_hedge_ptx:
            topics.add("ptx")
            found.append(_fill(rng, _pick(rng, P.PTX_EQUIVOCAL), f.ptx_side))
        elif f.ptx_visible and f.ptx_depth < 0.06 and u < cfg.p_hedge_ptx + cfg.p_miss_small_ptx:
            pass  # read as normal
        elif f.ptx_visible:
            topics.add("ptx")
            found.append(_fill(rng, _pick(rng, P.PTX_DEFINITE), f.ptx_side, size=size))
            impression.append(_fill(rng, _pick(rng, P.PTX_IMPRESSION), f.ptx_side, size=size))
        elif rng.random() > cfg.p_miss_subtle:
            topics.add("ptx")
            found.append(_fill(rng, _pick(rng, P.PTX_HEDGED), f.ptx_side))
    if rng.random() < cfg.p_false_positive:  # over-call: the film does not show it
        side, zone = ("right", "left")[int(rng.integers(2))], ("mid", "lower")[int(rng.integers(2))]
        kind = int(rng.integers(3))
        if kind == 0 and "consolidation" not in topics:
            topics.add("consolidation")
            found.append(_fill(rng, _pick(rng, P.CONSOLIDATION_HEDGED), side, zone))
        elif kind == 1 and "heart" not in topics:
            topics.add("heart")
            found.append(_pick(rng, P.BORDERLINE_HEART))
        elif kind == 2 and "oedema" not in topics:
            topics.add("oedema")
            found.append(_pick(rng, P.OEDEMA))
    for kind, side in (("oligaemia", f.oligaemia_side), ("atelectasis", f.platelike_atelectasis), ("hemidiaphragm", f.elevated_hemidiaphragm)):
        if side and rng.random() > cfg.p_miss_subtle:
            found.append(_fill(rng, _pick(rng, P.INCIDENTAL[kind]), side))
    return found, impression, topics


def _negatives(rng: np.random.Generator, topics: set[str]) -> list[str]:
    free = [t for t in P.NEGATIVES if t not in topics]
    n = int(rng.integers(1, len(free) + 1)) if free else 0
    chosen = rng.choice(free, size=n, replace=False) if n else []
    return [_pick(rng, P.NEGATIVES[str(t)]) for t in chosen]


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?")) else ".")


def write_report(
    label: str, findings: Findings, identity: Identity, view: str, rng: np.random.Generator,
    cfg: ReportConfig = ReportConfig(), mimic: str | None = None,
) -> str:
    """Compose one report.

    Args:
        label: the case's diagnosis (drives the history line only).
        findings: what the film shows (drives the read).
        identity: invented identifiers, some of which may appear in the text.
        view: "PA" or "AP".
        rng: the case's report random source.
        cfg: reader/history knobs.
        mimic: for ambiguous cases, the diagnosis the picture also resembles.

    Returns:
        UTF-8 report text ending with a newline.
    """
    side = "right" if rng.random() < 0.5 else "left"
    history = _history(label, rng, cfg, side)
    found, impression, topics = _read(findings, rng, cfg)
    negatives = _negatives(rng, topics)
    body = [_sentence(s) for s in found + negatives]
    order = rng.permutation(len(body))
    body = [body[i] for i in order]
    bones = _fill(rng, _pick(rng, P.BONES))
    if bones:
        body.append(bones)
    if impression:
        imp = [_sentence(s) for s in dict.fromkeys(impression)]
    else:
        imp = [_pick(rng, P.NORMAL_IMPRESSION)]
    if rng.random() < cfg.p_equivocal or mimic:
        other = mimic or _pick(rng, [k for k in P.DIFFERENTIAL if k != label])
        imp.append(_sentence(_pick(rng, P.DIFFERENTIAL[other])))
    if ("PE" in history or "D-dimer" in history) and rng.random() < 0.6:
        imp.append(_pick(rng, P.PE_RECOMMEND))
    lines = [_pick(rng, P.EXAM_LINES).replace("{view}", view)]
    lines.append(f"{_pick(rng, P.INDICATION_LABELS)} {history}")
    lines.append(_pick(rng, P.COMPARISON).replace("{prior}", identity.prior_date.strftime(_pick(rng, ("%d/%m/%Y", "%Y-%m-%d", "%m/%d/%Y")))))
    prose = rng.random() < 0.6
    lines.append(_pick(rng, P.FINDINGS_HEADS))
    lines.extend([" ".join(body)] if prose else [f"- {s}" for s in body])
    lines.append(f"{_pick(rng, P.IMPRESSION_HEADS)} {' '.join(imp)}")
    lines.extend(_phi_lines(identity, rng, cfg))
    text = "\n".join(line for line in lines if line.strip()) + "\n"
    if rng.random() < 0.4:  # American spelling for this report
        for uk, us in P.US_SPELLING.items():
            text = text.replace(uk, us)
    return text


def _phi_lines(identity: Identity, rng: np.random.Generator, cfg: ReportConfig) -> list[str]:
    if rng.random() >= cfg.p_phi:
        return []
    when = identity.study_datetime
    options = (
        f"Findings discussed with Dr. {identity.referring_physician.split('^')[0]} by telephone at {when:%H:%M} on {when:%d/%m/%Y}.",
        f"Patient: {identity.given_name} {identity.family_name}, MRN {identity.patient_id}.",
        f"Reported by {identity.radiologist}, {identity.institution}, {when:%Y-%m-%d}.",
        f"Acc# {identity.accession}. DOB {identity.birth_date:%d.%m.%Y}.",
        f"Mr/Ms {identity.family_name} was informed of the result.",
    )
    n = 1 + int(rng.integers(2))
    return [options[int(i)] for i in rng.choice(len(options), size=n, replace=False)]
