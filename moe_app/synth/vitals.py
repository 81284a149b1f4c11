"""Vitals and labs drawn from per-diagnosis, correlated, physiologically sensible distributions.

One latent severity per case drives the abnormal values together (a sicker patient is more
tachycardic, more tachypnoeic and more hypoxic), fever raises the heart rate, and fields
go missing at realistic, partly informative rates (a D-dimer is ordered when PE is suspected).
Pneumothorax deliberately looks much like a symptomatic normal patient: the vitals alone
cannot tell them apart, the film can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moe_app.labels import VITALS


@dataclass(frozen=True)
class VitalProfile:
    """Per-diagnosis parameters: means/SDs at zero severity and the shift at full severity."""

    age: tuple[float, float]  # mean, sd (years)
    male: float  # share of men
    hr: tuple[float, float, float]  # mean, sd, severity shift (bpm)
    rr: tuple[float, float, float]
    spo2: tuple[float, float, float]  # shift is negative (desaturation)
    sbp: tuple[float, float, float]
    fever: float  # probability of fever
    wbc: tuple[float, float]  # mean, sd (x10^9/L)
    log_bnp: tuple[float, float]  # mean, sd of ln(pg/mL)
    log_ddimer: tuple[float, float]  # mean, sd of ln(ng/mL)
    p_ddimer: float  # probability the D-dimer was measured
    p_bnp: float  # probability the BNP was measured


PROFILES: dict[str, VitalProfile] = {
    "normal": VitalProfile((48, 18), 0.5, (80, 12, 6), (16, 2.5, 2), (97.2, 1.3, -1), (128, 16, 0), 0.05, (7.4, 2.0), (3.6, 0.8), (5.7, 0.55), 0.45, 0.35),
    "pneumonia": VitalProfile((60, 18), 0.55, (90, 12, 14), (21, 3.0, 6), (95.0, 1.8, -4), (122, 18, -8), 0.72, (13.5, 4.5), (4.6, 0.9), (7.0, 0.6), 0.4, 0.4),
    "heart_failure": VitalProfile((74, 10), 0.55, (88, 14, 12), (21, 3.0, 6), (94.5, 2.0, -4), (146, 22, 8), 0.06, (8.4, 2.3), (6.6, 0.8), (6.5, 0.6), 0.35, 0.85),
    "pneumothorax": VitalProfile((40, 18), 0.72, (84, 12, 8), (17, 2.8, 3), (96.6, 1.5, -1.5), (126, 16, 0), 0.05, (8.0, 2.2), (3.6, 0.8), (5.8, 0.55), 0.45, 0.3),
    "pulmonary_embolism": VitalProfile((58, 16), 0.5, (104, 13, 12), (23, 3.5, 5), (93.5, 2.0, -4), (118, 18, -10), 0.2, (9.6, 2.8), (5.2, 1.0), (8.1, 0.6), 0.9, 0.45),
}

# Chance that a routinely measured field is missing anyway (not ordered, not charted).
ROUTINE_MISSING: dict[str, float] = {
    "age_years": 0.01,
    "heart_rate_bpm": 0.03,
    "systolic_bp_mmhg": 0.05,
    "diastolic_bp_mmhg": 0.05,
    "respiratory_rate_per_min": 0.1,
    "spo2_percent": 0.04,
    "temperature_c": 0.08,
    "wbc_10e9_per_l": 0.2,
}
_SPECS = {v.key: v for v in VITALS}


def _clip(key: str, value: float, decimals: int) -> float:
    spec = _SPECS[key]
    return round(float(np.clip(value, spec.low, spec.high)), decimals)


def sample_vitals(
    label: str, rng: np.random.Generator, severity: float, mimic: str | None = None
) -> tuple[dict[str, float], str]:
    """Draw one case's vitals/labs and sex.

    Args:
        label: diagnosis.
        rng: the case's vitals random source.
        severity: 0..1 latent illness severity shared by the correlated fields.
        mimic: for ambiguous cases, a second diagnosis whose labs the patient partly shows.

    Returns:
        (values keyed by VITAL_KEYS, absent keys = not measured; sex "F"/"M").
    """
    p = PROFILES[label]
    m = PROFILES[mimic] if mimic else p
    mix = 0.5 if mimic else 0.0
    sex = "M" if rng.random() < p.male else "F"
    fever = rng.random() < p.fever
    temp = rng.normal(38.4, 0.6) if fever else rng.normal(36.8, 0.35)
    fever_hr = 9.0 * max(temp - 37.0, 0.0)  # roughly 10 bpm per degree

    def mixed(a: tuple[float, ...], b: tuple[float, ...], i: int) -> float:
        return (1 - mix) * a[i] + mix * b[i]

    hr = rng.normal(mixed(p.hr, m.hr, 0), p.hr[1]) + mixed(p.hr, m.hr, 2) * severity + fever_hr
    rr = rng.normal(mixed(p.rr, m.rr, 0), p.rr[1]) + mixed(p.rr, m.rr, 2) * severity
    spo2 = rng.normal(mixed(p.spo2, m.spo2, 0), p.spo2[1]) + mixed(p.spo2, m.spo2, 2) * severity
    sbp = rng.normal(mixed(p.sbp, m.sbp, 0), p.sbp[1]) + mixed(p.sbp, m.sbp, 2) * severity
    dbp = sbp * rng.uniform(0.55, 0.68)
    wbc = rng.normal(mixed(p.wbc, m.wbc, 0), p.wbc[1]) + (2.0 if fever else 0.0)
    bnp = np.exp(rng.normal(mixed(p.log_bnp, m.log_bnp, 0), p.log_bnp[1]) + 0.5 * severity * (label == "heart_failure"))
    ddimer = np.exp(rng.normal(mixed(p.log_ddimer, m.log_ddimer, 0), p.log_ddimer[1]))
    age = rng.normal(*p.age)
    bnp *= 1.0 + max(age - 60.0, 0.0) / 40.0  # BNP rises with age
    values = {
        "age_years": _clip("age_years", max(age, 18.0), 0),
        "heart_rate_bpm": _clip("heart_rate_bpm", hr, 0),
        "systolic_bp_mmhg": _clip("systolic_bp_mmhg", sbp, 0),
        "diastolic_bp_mmhg": _clip("diastolic_bp_mmhg", dbp, 0),
        "respiratory_rate_per_min": _clip("respiratory_rate_per_min", max(rr, 8.0), 0),
        "spo2_percent": _clip("spo2_percent", min(spo2, 100.0), 0),
        "temperature_c": _clip("temperature_c", temp, 1),
        "wbc_10e9_per_l": _clip("wbc_10e9_per_l", max(wbc, 1.5), 1),
        "bnp_pg_per_ml": _clip("bnp_pg_per_ml", bnp, 0),
        "d_dimer_ng_per_ml": _clip("d_dimer_ng_per_ml", ddimer, 0),
    }
    keep = {k: rng.random() >= q for k, q in ROUTINE_MISSING.items()}
    keep["bnp_pg_per_ml"] = rng.random() < p.p_bnp
    keep["d_dimer_ng_per_ml"] = rng.random() < p.p_ddimer
    return {k: v for k, v in values.items() if keep[k]}, sex
