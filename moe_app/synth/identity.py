"""Synthetic patient and study identifiers: realistic-looking PHI that de-identification must remove.

Every name and number here is invented at random; none belongs to a real person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

FIRST_F = ("Mary", "Aisha", "Olivia", "Chen", "Fatima", "Sofia", "Ingrid", "Priya", "Grace", "Lucia", "Hannah", "Yuki", "Amara", "Elena", "Niamh", "Rosa")
FIRST_M = ("James", "Mohammed", "Liam", "Wei", "Carlos", "Ivan", "Arjun", "Noah", "Kwame", "Lars", "Tomas", "Hiro", "David", "Omar", "Sean", "Pierre")
LAST = ("Smith", "Okafor", "Nguyen", "Garcia", "Müller", "Kowalski", "Patel", "O'Brien", "Rossi", "Johansson", "Haddad", "Tanaka", "Dubois", "Mensah", "Novak", "Fernandes", "Lindqvist", "Abara", "Walsh", "Kim")
INSTITUTIONS = ("St Elsewhere General Hospital", "Riverside Medical Centre", "Northgate University Hospital", "Lakeview Community Hospital", "Mercy Regional Medical Center", "Harbourside Infirmary")
STATIONS = ("CR-ED-01", "DX-WARD3", "CR-ICU-2", "DX-OPD-1", "PORTABLE-7")


@dataclass(frozen=True)
class Identity:
    """Who the (invented) patient is and when/where the (invented) study happened."""

    patient_name: str  # DICOM PN format "Family^Given"
    given_name: str
    family_name: str
    patient_id: str  # MRN-like
    birth_date: dt.date
    study_datetime: dt.datetime
    accession: str
    institution: str
    station: str
    referring_physician: str  # DICOM PN
    radiologist: str  # "Dr Given Family" for the report
    prior_date: dt.date  # a date that appears in the report's comparison line


def _doctor(rng: np.random.Generator) -> tuple[str, str]:
    first = str(rng.choice(FIRST_F + FIRST_M))
    last = str(rng.choice(LAST))
    return first, last


def sample_identity(rng: np.random.Generator, sex: str, age_years: float) -> Identity:
    """Draw invented identifiers consistent with the patient's sex and age."""
    given = str(rng.choice(FIRST_F if sex == "F" else FIRST_M))
    family = str(rng.choice(LAST))
    study = dt.datetime(2019, 1, 1) + dt.timedelta(minutes=int(rng.integers(0, 6 * 365 * 24 * 60)))
    birth = (study - dt.timedelta(days=int(age_years * 365.25 + rng.integers(0, 365)))).date()
    ref = _doctor(rng)
    rad = _doctor(rng)
    return Identity(
        patient_name=f"{family}^{given}",
        given_name=given,
        family_name=family,
        patient_id=f"{int(rng.integers(10_000_000, 99_999_999))}",
        birth_date=birth,
        study_datetime=study,
        accession=f"A{int(rng.integers(100_000_000, 999_999_999))}",
        institution=str(rng.choice(INSTITUTIONS)),
        station=str(rng.choice(STATIONS)),
        referring_physician=f"{ref[1]}^{ref[0]}",
        radiologist=f"Dr {rad[0]} {rad[1]}",
        prior_date=(study - dt.timedelta(days=int(rng.integers(30, 2000)))).date(),
    )
