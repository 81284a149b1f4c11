"""Result exports: the FHIR R4 DiagnosticReport validates and the printable page says what matters."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from moe_app.fhir_report import diagnostic_report
from moe_app.labels import LABELS
from moe_app.prediction import ExpertOpinion, Prediction
from moe_app.ui.views import diagnosis_markdown, printable_html


@pytest.fixture
def prediction() -> Prediction:
    probs = dict(zip(LABELS, (0.05, 0.71, 0.12, 0.07, 0.05), strict=True))
    gating = {"image_texture": 0.64, "cross_modal": 0.36, "vitals_labs": 0.0}
    experts = {
        "image_texture": ExpertOpinion("image", dict(zip(LABELS, (0.02, 0.8, 0.1, 0.05, 0.03), strict=True))),
        "cross_modal": ExpertOpinion("multimodal", dict(zip(LABELS, (0.1, 0.55, 0.16, 0.1, 0.09), strict=True))),
    }
    contributions = {n: {k: gating[n] * p for k, p in op.probabilities.items()} for n, op in experts.items()}
    return Prediction(
        case="sample-01", diagnosis="pneumonia", probabilities=probs, gating=gating,
        selected_experts=["image_texture", "cross_modal"], experts=experts, contributions=contributions,
        modalities={"image": True, "report": False, "vitals": True}, uncertain=False,
        model_version="moe-abc", runtime="torch:cpu", latency_ms=12.0,
    )


def test_diagnostic_report_validates_as_fhir(prediction: Prediction) -> None:
    doc = diagnostic_report(prediction, pseudonym="case-0123456789abcdef", weights_sha256="a" * 64)
    report = DiagnosticReport.model_validate(json.loads(json.dumps(doc)))
    observations = [r for r in report.contained if r.get_resource_type() == "Observation"]
    assert len(observations) == len(LABELS)
    by_label = {o.code.coding[0].code: o for o in observations}
    for label, p in prediction.probabilities.items():
        assert float(by_label[label].valueQuantity.value) == pytest.approx(p)
        weights = {c.code.coding[0].code: float(c.valueQuantity.value) for c in by_label[label].component}
        assert weights == {"image_texture": 0.64, "cross_modal": 0.36}
    assert report.subject.identifier.value == "case-0123456789abcdef"
    assert "Not for clinical use" in report.conclusion
    assert "sample-01" not in json.dumps(doc)  # the upload/folder name is not exported


def test_uncertain_result_is_not_presented_as_a_diagnosis(prediction: Prediction) -> None:
    from dataclasses import replace

    unsure = replace(prediction, uncertain=True, uncertainty_reason="calibrated confidence 0.41 below 0.55")
    assert "Uncertain" in diagnosis_markdown(unsure) and "review" in diagnosis_markdown(unsure)
    assert diagnosis_markdown(prediction).startswith("## Pneumonia")
    doc = diagnostic_report(unsure, pseudonym="case-0123456789abcdef", weights_sha256="a" * 64)
    assert doc["conclusion"].startswith("Uncertain, review needed")


def test_printable_report_carries_notice_numbers_and_escapes_text(prediction: Prediction) -> None:
    page = printable_html(prediction, "case-0123456789abcdef", "<script>alert(1)</script> summary", {"image": "data:image/png;base64,AAAA"})
    assert "Not for clinical use" in page
    assert "71.0%" in page and "0.64" in page and "case-0123456789abcdef" in page
    assert "<script>" not in page
    assert 'src="data:image/png;base64,AAAA"' in page
    assert "How their votes add up" in page and "0.64 × 0.80 = 0.512" in page  # the chart of contributions
