"""Phrase pools for the synthetic radiology reports (grammar fragments, not whole templates).

Spelling is written in British form and converted per report (see `US_SPELLING`). `{side}`,
`{Side}`, `{zone}` and `{size}` are filled in by report.py.
"""

from __future__ import annotations

# Clinical context that points at each diagnosis (used in a share of indication lines).
INDICATION: dict[str, tuple[str, ...]] = {
    "pneumonia": (
        "fever and productive cough", "cough, pyrexia, ?pneumonia", "r/o PNA", "SOB and fever x3 days",
        "crackles {side} base, raised inflammatory markers", "sepsis ?chest source", "?LRTI",
        "rigors and green sputum", "febrile, cough, reduced air entry {side} base", "community-acquired pneumonia?",
    ),
    "heart_failure": (
        "worsening SOB and bilateral leg swelling", "orthopnoea, ?CHF", "known LVEF 30%, increasing dyspnoea",
        "fluid overload", "PND and ankle oedema", "?decompensated heart failure", "SOB, raised JVP",
        "weight gain 4 kg, breathless on exertion", "CHF exacerbation?", "bibasal crackles, hx of cardiomyopathy",
    ),
    "pneumothorax": (
        "sudden onset pleuritic chest pain", "acute SOB, ?PTX", "s/p fall, {side} chest wall pain",
        "tall young male w/ sudden chest pain", "s/p CVC insertion, r/o PTX", "reduced breath sounds {side}, ?pneumothorax",
        "sharp {side}-sided chest pain after coughing", "hx of spontaneous PTX, new pain",
    ),
    "pulmonary_embolism": (
        "pleuritic chest pain and tachycardia, r/o PE", "SOB after long-haul flight", "post-op day 5, dyspnoea and haemoptysis",
        "{side} calf swelling and SOB", "?PE, Wells score high", "tachycardic, hypoxic, raised D-dimer",
        "on OCP, sudden breathlessness", "hx of DVT, new SOB", "sudden dyspnoea, ?PE", "cancer pt w/ acute SOB and chest pain",
    ),
    "normal": (
        "pre-op assessment", "routine follow-up", "atypical chest pain", "cough x2 weeks, non-smoker", "health screening",
        "palpitations", "anxiety, chest tightness", "pre-employment CXR",
    ),
}
# Context that fits any diagnosis.
GENERIC_INDICATION: tuple[str, ...] = (
    "SOB", "chest pain", "dyspnoea", "cough", "shortness of breath", "chest pain, SOB", "breathlessness",
    "unwell", "desaturation", "ED attendance, chest pain", "tachypnoeic", "r/o acute process",
)

INDICATION_LABELS = ("INDICATION:", "History:", "Clinical details:", "Reason for exam:", "CLINICAL HISTORY:", "Hx:", "Indication -")
EXAM_LINES = (
    "EXAMINATION: CHEST {view}", "CXR {view}", "Exam: Chest radiograph, {view}", "CHEST X-RAY ({view})",
    "Study: XR chest, {view} view", "",
)
COMPARISON = ("Comparison: none.", "COMPARISON: None available.", "Comparison: prior CXR dated {prior}.", "Compared with {prior}.", "No prior imaging for comparison.", "")
FINDINGS_HEADS = ("FINDINGS:", "Findings:", "Report:", "")
IMPRESSION_HEADS = ("IMPRESSION:", "Impression:", "Conclusion:", "Opinion:", "SUMMARY:", "IMP:")

SIDE_WORDS = {"right": ("right", "right", "R", "rt"), "left": ("left", "left", "L", "lt")}
ZONE_WORDS = {
    "upper": ("upper zone", "upper lobe", "apical region", "upper lung"),
    "mid": ("mid zone", "mid lung", "perihilar region", "middle lobe/lingula"),
    "lower": ("lower zone", "base", "lower lobe", "basal segments", "lung base"),
}

CONSOLIDATION_DEFINITE = (
    "{size}consolidation in the {side} {zone}", "airspace opacity at the {side} {zone}", "dense {side} {zone} consolidation",
    "focal airspace consolidation, {side} {zone}", "{side} {zone} opacification consistent with consolidation",
    "patchy airspace shadowing in the {side} {zone}",
)
BRONCHOGRAM = ("with air bronchograms", "w/ air bronchograms", "containing air bronchograms")
CONSOLIDATION_HEDGED = (
    "subtle opacity at the {side} {zone}, atelectasis vs early consolidation", "ill-defined {side} {zone} shadowing, possibly infective",
    "questionable {side} {zone} airspace opacity", "hazy {side} {zone} opacity, cannot exclude early pneumonia",
)
PNEUMONIA_IMPRESSION = ("{side} {zone} pneumonia", "consolidation c/w pneumonia", "findings in keeping with lobar pneumonia",
                        "{side}-sided pneumonia", "infective consolidation {side} {zone}", "appearances consistent with infection")

CARDIOMEGALY = ("cardiomegaly", "the heart is enlarged", "enlarged cardiac silhouette", "cardiothoracic ratio increased (approx {ctr})",
                "globular enlarged heart", "cardiac enlargement")
BORDERLINE_HEART = ("heart size at the upper limit of normal", "borderline cardiomegaly", "heart size difficult to assess on this projection",
                    "mildly prominent cardiac silhouette")
EFFUSION = ("{size}{side} pleural effusion", "blunting of the {side} costophrenic angle", "{side} effusion", "{size}{side} pleural fluid")
BILATERAL_EFFUSION = ("bilateral pleural effusions", "b/l effusions", "bilateral blunting of the CP angles", "{size}bilateral effusions")
OEDEMA = ("perihilar haziness", "interstitial oedema", "pulmonary venous congestion", "upper lobe blood diversion",
          "vascular redistribution", "hazy perihilar opacities c/w oedema", "septal lines (Kerley B)")
HF_IMPRESSION = ("congestive cardiac failure", "CHF", "fluid overload", "cardiomegaly with pulmonary oedema", "features of left ventricular failure",
                 "pulmonary venous hypertension and effusions", "decompensated heart failure")

PTX_DEFINITE = ("{size}{side} pneumothorax", "{side} PTX with a visible visceral pleural line", "{size}{side} apical pneumothorax",
                "pleural line in the {side} hemithorax with absent lung markings peripherally", "{side}-sided pneumothorax, rim of {rim} cm")
PTX_HEDGED = ("possible tiny {side} apical pneumothorax", "? thin {side} apical pleural line, small PTX cannot be excluded",
              "questionable {side} apical lucency, ?small PTX", "subtle {side} apical pleural line may represent a small pneumothorax")
PTX_EQUIVOCAL = ("lucency at the {side} apex, ?bulla vs pneumothorax", "possible {side} pleural line, may be a skin fold",
                 "{side} apical lucency, PTX not confidently excluded; repeat film suggested",
                 "hyperlucent {side} upper zone, ?bullous change", "curvilinear {side} apical line, probably a skin fold",
                 "{side} lung markings difficult to trace to the periphery, suggest expiratory film")
PTX_IMPRESSION = ("{side} pneumothorax", "{size}{side} PTX", "pneumothorax on the {side}", "{side} PTX, no tension")

INCIDENTAL = {
    "effusion": ("trace {side} effusion", "minor blunting of the {side} CP angle", "tiny {side} pleural effusion"),
    "oligaemia": ("relative oligaemia of the {side} lung", "sparse vascular markings {side} lung", "asymmetric lucency of the {side} hemithorax"),
    "atelectasis": ("linear atelectasis at the {side} base", "plate-like atelectasis {side} lower zone", "subsegmental atelectasis, {side} base"),
    "hemidiaphragm": ("elevated {side} hemidiaphragm", "raised {side} hemidiaphragm", "{side} hemidiaphragm higher than usual"),
}

NEGATIVES = {
    "ptx": ("no pneumothorax", "no PTX", "PTX excluded", "no evidence of pneumothorax", "no pleural line to suggest PTX"),
    "consolidation": ("no focal consolidation", "no consolidation", "without focal consolidation", "no airspace opacity", "no confluent consolidation"),
    "effusion": ("no pleural effusion", "CP angles are sharp", "no effusions", "costophrenic angles clear"),
    "heart": ("heart size normal", "normal cardiomediastinal contours", "cardiac silhouette within normal limits", "CTR normal"),
    "oedema": ("no pulmonary oedema", "no features of failure", "no interstitial oedema", "pulmonary vasculature normal"),
}
BONES = ("No acute bony abnormality.", "Bones unremarkable.", "Visualised osseous structures intact.", "Old healed {side} rib fracture.", "", "", "")
NORMAL_IMPRESSION = ("No acute cardiopulmonary process.", "Normal chest radiograph.", "No acute abnormality.", "NAD.",
                     "No radiographic abnormality to account for symptoms.", "Clear lungs. Normal heart size.")
PE_RECOMMEND = ("A normal CXR does not exclude PE; CTPA recommended if clinical suspicion persists.",
                "If PE suspected, suggest CT pulmonary angiogram.", "Consider CTPA / V/Q scan as clinically indicated.",
                "Correlate with D-dimer; CTPA if high pre-test probability.")
DIFFERENTIAL = {
    "pneumonia": ("infection is a consideration", "superimposed infection not excluded", "?early pneumonia"),
    "heart_failure": ("possible element of fluid overload", "cannot exclude early oedema", "?cardiac cause"),
    "pneumothorax": ("small PTX cannot be entirely excluded", "?tiny apical pneumothorax"),
    "pulmonary_embolism": ("PE cannot be excluded on plain film", "if PE suspected, CTPA"),
    "normal": ("likely no acute process", "probably within normal limits"),
}
HEDGES = ("likely ", "probable ", "possible ", "suspected ", "", "", "")

US_SPELLING: dict[str, str] = {
    "oedema": "edema", "Oedema": "Edema", "haemoptysis": "hemoptysis", "oligaemia": "oligemia", "dyspnoea": "dyspnea",
    "orthopnoea": "orthopnea", "tachypnoeic": "tachypneic", "opacification": "opacification", "Visualised": "Visualized",
    "centre": "center", "pyrexia": "fever", "haziness": "haziness",
}
