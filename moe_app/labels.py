"""The fixed diagnosis label set and the vitals/labs schema shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass

LABELS: tuple[str, ...] = (
    "normal",
    "pneumonia",
    "heart_failure",
    "pneumothorax",
    "pulmonary_embolism",
)
LABEL_TITLES: dict[str, str] = {
    "normal": "Normal",
    "pneumonia": "Pneumonia",
    "heart_failure": "Heart failure",
    "pneumothorax": "Pneumothorax",
    "pulmonary_embolism": "Pulmonary embolism",
}
MODALITIES: tuple[str, ...] = ("image", "report", "vitals")


@dataclass(frozen=True)
class VitalSpec:
    """One vitals/labs field of the intake contract."""

    key: str  # key in vitals.json; the unit is part of the name
    title: str  # what a clinician reads
    unit: str
    low: float  # physiologically possible range (outside: rejected as impossible)
    high: float
    ref_low: float  # usual adult reference range (shown next to the value)
    ref_high: float


# Numeric fields in a stable order (the model's vitals vector follows it).
VITALS: tuple[VitalSpec, ...] = (
    VitalSpec("age_years", "Age", "years", 0, 120, 18, 90),
    VitalSpec("heart_rate_bpm", "Heart rate", "bpm", 1, 300, 60, 100),
    VitalSpec("systolic_bp_mmhg", "Systolic BP", "mmHg", 30, 300, 90, 140),
    VitalSpec("diastolic_bp_mmhg", "Diastolic BP", "mmHg", 10, 200, 60, 90),
    VitalSpec("respiratory_rate_per_min", "Respiratory rate", "/min", 1, 80, 12, 20),
    VitalSpec("spo2_percent", "SpO2", "%", 30, 100, 95, 100),
    VitalSpec("temperature_c", "Temperature", "°C", 25, 45, 36.1, 37.8),
    VitalSpec("wbc_10e9_per_l", "White cell count", "×10⁹/L", 0, 500, 4.0, 11.0),
    VitalSpec("bnp_pg_per_ml", "BNP", "pg/mL", 0, 50000, 0, 100),
    VitalSpec("d_dimer_ng_per_ml", "D-dimer", "ng/mL FEU", 0, 100000, 0, 500),
)
VITAL_KEYS: tuple[str, ...] = tuple(v.key for v in VITALS)
SEX_KEY = "sex"  # "F" or "M"; not numeric, so kept apart from VITALS
SEX_VALUES: tuple[str, ...] = ("F", "M")
