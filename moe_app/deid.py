"""De-identification: DICOM PS3.15 Annex E Basic Profile, case pseudonyms, report scrubbing.

Applied by intake before anything is displayed, logged or stored. Pseudonyms and UID
remapping use HMAC-SHA256 with a secret key kept in a file outside the repository and
the database (`load_or_create_key`), so the same patient and study always get the same
pseudonym on one installation and nobody without the key can reverse or recompute it.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import uuid
from pathlib import Path

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from moe_app.config import REPO_ROOT
from moe_app.errors import ConfigError, DeidError

KEY_BYTES = 32
PSEUDONYM_PREFIX = "case-"
_MAX_SHIFT_DAYS = 3650

# PS3.15 Table E.1-1 (Basic Profile) attributes removed outright (action X, and D/Z
# actions whose dummy value we do not need).
_REMOVE_KEYWORDS = """
AcquisitionComments AcquisitionContextSequence AcquisitionDeviceProcessingDescription
AcquisitionProtocolDescription ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID
AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription Allergies Arbitrary
AuthorObserverSequence BranchOfService CassetteID CommentsOnThePerformedProcedureStep
ConfidentialityConstraintOnPatientDataDescription ContentCreatorIdentificationCodeSequence
ContentSequence ContributionDescription CountryOfResidence
CurrentPatientLocation CustodialOrganizationSequence DataSetTrailingPadding DerivationDescription
DetectorID DeviceSerialNumber DigitalSignaturesSequence DischargeDiagnosisDescription
DistributionAddress DistributionName EthnicGroup FillerOrderNumberImagingServiceRequest
FrameComments GantryID GeneratorID GraphicAnnotationSequence HumanPerformerName
HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments
ImagePresentationComments ImagingServiceRequestComments Impressions InstitutionAddress
InstitutionCodeSequence InstitutionName InstitutionalDepartmentName InstitutionalDepartmentTypeCodeSequence
InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription
InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber
IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID LastMenstrualDate MedicalAlerts
MedicalRecordLocator MilitaryRank ModifiedAttributesSequence ModifyingDeviceID
ModifyingDeviceManufacturer NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults
Occupation OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderEnteredBy
OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence
OtherPatientNames ParticipantSequence PatientAddress PatientAge PatientBirthName
PatientBirthTime PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence
PatientMotherBirthName PatientPrimaryLanguageCodeSequence PatientReligiousPreference
PatientSexNeutered PatientSize PatientState PatientTelecomInformation PatientTelephoneNumbers
PatientTransportArrangements PatientWeight PerformedLocation PerformedProcedureStepDescription
PerformedProcedureStepID PerformedStationAETitle PerformedStationGeographicLocationCodeSequence
PerformedStationName PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonName
PersonTelecomInformation PersonTelephoneNumbers PhysicianApprovingInterpretation
PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
PlacerOrderNumberImagingServiceRequest PlateID PreMedication PregnancyStatus ProtocolName
ReasonForStudy ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence
ReferencedPatientPhotoSequence ReferencedPatientSequence ReferencedSOPInstanceMACSequence
ReferringPhysicianAddress ReferringPhysicianIdentificationSequence
ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence
RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription RequestedProcedureID
RequestedProcedureLocation RequestingPhysician RequestingService ResponsibleOrganization
ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer
ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
ScheduledProcedureStepDescription ScheduledProcedureStepLocation ScheduledStationAETitle
ScheduledStationGeographicLocationCodeSequence ScheduledStationName ScheduledStationNameCodeSequence
ScheduledStudyLocation ScheduledStudyLocationAETitle SeriesDescription ServiceEpisodeDescription
ServiceEpisodeID SmokingStatus SourceApplicationEntityTitle SpecialNeeds StationName StudyComments
StudyDescription  StudyIDIssuer TextComments TextString TopicAuthor TopicKeywords
TopicSubject TopicTitle VerifyingObserverIdentificationCodeSequence VerifyingObserverName
VerifyingObserverSequence VerifyingOrganization VisitComments
"""
REMOVE: frozenset[str] = frozenset(_REMOVE_KEYWORDS.split())
# Type 2 attributes of the profile's Z action: kept, emptied.
EMPTY: frozenset[str] = frozenset(
    {
        "AccessionNumber",
        "StudyID",
        "ReferringPhysicianName",
        "PatientBirthDate",
        "PatientSex",
        "ContentCreatorName",
    }
)
# Value representations removed wherever they occur: person names, free text, and
# unknown (UN) values whose meaning, and so whose content, nobody can vouch for.
_REMOVE_VRS = frozenset({"PN", "LT", "ST", "UT", "UN"})
# Short strings whose keyword says they identify someone or something; kept: model names.
_ID_SUFFIXES = ("ID", "IDs", "Number", "Numbers", "Name", "Names", "Address", "Location", "Title")
_KEEP = frozenset({"ManufacturerModelName", "CodingSchemeName"})
_SC_LIKE = frozenset({"SC", "US", "OT", "XC", "ES", "GM", "SM", "DOC", "IVUS"})
_SC_CLASSES = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture family prefix
METHOD = (
    "PS3.15 E.1 Basic Profile (moe-app)",
    "Dates shifted per patient",
    "UIDs remapped by keyed hash",
)


def load_or_create_key(path: Path) -> bytes:
    """Read the pseudonym key, creating 32 random bytes (mode 0600) on first use.

    Creation is atomic: the key is written to a private temporary file and linked into
    place, so two processes starting together end up with the same key.

    Raises:
        ConfigError: The path is inside the repository, the file is unreadable, readable
            by other users, or not a 32-byte key.
    """
    path = Path(path).expanduser().resolve()
    if path.is_relative_to(REPO_ROOT):
        raise ConfigError(
            f"The pseudonym key must live outside the code repository ({REPO_ROOT}); set MOE_APP_PSEUDONYM_KEY_FILE."
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(
                f"The pseudonym key file {path} is readable by other users; run: chmod 600 {path}"
            )
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"The pseudonym key file {path} cannot be read ({exc.strerror})."
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"The pseudonym key file {path} is not a {KEY_BYTES}-byte key; restore it from backup."
        )
    return key


def _mac(key: bytes, purpose: str, *parts: str) -> bytes:
    message = "\x1f".join((purpose, *parts)).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).digest()


def pseudonym(key: bytes, patient_id: str, study_uid: str) -> str:
    """Stable case pseudonym: "case-" + 16 hex digits of HMAC-SHA256(key, patient, study)."""
    return PSEUDONYM_PREFIX + _mac(key, "pseudonym", patient_id, study_uid).hex()[:16]


def content_pseudonym(key: bytes, digests: list[str]) -> str:
    """Pseudonym of a case without DICOM: keyed hash of its inputs' SHA-256 digests."""
    return PSEUDONYM_PREFIX + _mac(key, "content", *sorted(digests)).hex()[:16]


def remap_uid(key: bytes, uid: str) -> str:
    """The same UID always maps to the same "2.25.<128-bit int>" UID (UUID-derived)."""
    return f"2.25.{uuid.UUID(bytes=_mac(key, 'uid', uid)[:16], version=4).int}"


def date_shift_days(key: bytes, patient_id: str) -> int:
    """Per-patient offset (1..3650 days) subtracted from every date of that patient."""
    return 1 + int.from_bytes(_mac(key, "date-shift", patient_id)[:4], "big") % _MAX_SHIFT_DAYS


def _shift_date(value: str, days: int) -> str:
    """Shift a DA value (or the date part of a DT value); "" when it is not a full date."""
    value = value.strip()
    try:
        shifted = dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8])) - dt.timedelta(
            days=days
        )
    except (ValueError, OverflowError):
        return ""
    if len(value) > 8 and not value[8:9].isdigit() and value[8:9] not in ".+-":
        return ""
    return shifted.strftime("%Y%m%d") + value[8:]


def _well_known(uid: str) -> bool:
    from pydicom._uid_dict import UID_dictionary

    return uid in UID_dictionary


def _clean(ds: Dataset, key: bytes, days: int) -> None:
    """Apply the profile to one dataset level, recursing into sequences."""
    ds.remove_private_tags()
    for elem in list(ds):
        tag, vr = elem.tag, elem.VR
        keyword = keyword_for_tag(tag) or ""
        if keyword in EMPTY and tag.group != 0x0002:
            elem.value = ""
        elif (
            (tag.group & 0xFF00) in (0x5000, 0x6000)
            or keyword in REMOVE
            or vr in _REMOVE_VRS  # PatientName/PatientID too: the top level gets the pseudonym
            or (vr in ("LO", "SH") and keyword.endswith(_ID_SUFFIXES) and keyword not in _KEEP)
        ):
            del ds[tag]
        elif vr == "SQ":
            for item in elem.value or []:
                _clean(item, key, days)
        elif vr == "UI" and elem.value and tag.group != 0x0002:
            values = elem.value if elem.VM > 1 else [elem.value]
            mapped = [str(v) if _well_known(str(v)) else remap_uid(key, str(v)) for v in values]
            elem.value = mapped if elem.VM > 1 else mapped[0]
        elif vr in ("DA", "DT") and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            shifted = [_shift_date(str(v), days) for v in values]
            elem.value = shifted if elem.VM > 1 else shifted[0]


def _burned_in_warnings(ds: Dataset) -> list[str]:
    modality = str(ds.get("Modality", "") or "").upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    burned = str(ds.get("BurnedInAnnotation", "") or "").upper()
    sc_like = modality in _SC_LIKE or sop_class.startswith(_SC_CLASSES)
    if burned == "YES" or (sc_like and burned != "NO"):
        stated = "says YES" if burned == "YES" else "is not stated"
        return [
            f"This {modality or 'image'} image may carry patient identifiers burned into the "
            f"pixels (BurnedInAnnotation {stated}); they are not removed. Check the image "
            "before sharing it."
        ]
    return []


def deidentify(ds: Dataset, *, key: bytes) -> tuple[Dataset, list[str]]:
    """Apply the PS3.15 Annex E Basic Application Level Confidentiality Profile.

    Removes patient, physician, operator, station and institution identifiers, accession
    and study IDs, free text, overlays (60xx), curves (50xx) and private tags; replaces
    PatientName/PatientID by the case pseudonym; remaps instance UIDs with a keyed hash
    (same UID -> same new UID); shifts dates by a per-patient keyed offset; sets
    PatientIdentityRemoved and DeidentificationMethod. The input is not modified.

    Args:
        ds: The original dataset (pixel data may be present; it is copied, not changed).
        key: The pseudonym key.

    Returns:
        The de-identified copy, and warnings for the user (burned-in annotation).

    Raises:
        DeidError: The dataset could not be processed, so it must not be used.
    """
    try:
        patient_id = str(ds.get("PatientID", "") or "")
        case = pseudonym(key, patient_id, str(ds.get("StudyInstanceUID", "") or ""))
        days = date_shift_days(key, patient_id)
        warnings = _burned_in_warnings(ds)
        out = copy.deepcopy(ds)
        _clean(out, key, days)
        meta = getattr(out, "file_meta", None)
        if meta is not None:
            for keyword in (
                "SourceApplicationEntityTitle",
                "SendingApplicationEntityTitle",
                "ReceivingApplicationEntityTitle",
                "SourcePresentationAddress",
            ):
                if keyword in meta:
                    delattr(meta, keyword)
            if meta.get("MediaStorageSOPInstanceUID"):
                meta.MediaStorageSOPInstanceUID = remap_uid(
                    key, str(meta.MediaStorageSOPInstanceUID)
                )
        out.PatientName = case
        out.PatientID = case
        out.PatientIdentityRemoved = "YES"
        out.LongitudinalTemporalInformationModified = "MODIFIED"
        out.DeidentificationMethod = list(METHOD)
        out.DeidentificationMethodCodeSequence = Sequence(
            [
                _code("113100", "Basic Application Confidentiality Profile"),
                _code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
            ]
        )
    except (Exception, MemoryError) as exc:
        raise DeidError(
            f"The DICOM header could not be de-identified ({type(exc).__name__}), so it was not used."
        ) from None
    return out, warnings


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


_TITLE = r"(?i:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Doctor|Sister|Nurse)\.?"
# A name word: capitalised word or initial, but not a label or a title that follows.
_NAME_WORD = r"(?!(?i:MRN|DOB|NHS|ID|Age|Sex|Dr|Mr|Mrs|Ms|Prof)\b)(?:[A-Z][A-Za-z'\-]+|[A-Z]\.?)"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_ID_LABEL = (
    r"MRN|MR#|NHS(?: No\.?| number)?|Hospital (?:No\.?|number)|Patient ID|ID|"
    r"Accession(?: No\.?| number)?|Acc\.?(?: No\.?)?"
)
_PHONE = re.compile(
    r"(?<![\w/.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w/])"
)
_SCRUBS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), "[DATE]"),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"), "[DATE]"),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?[ -]{_MONTH}\.?,?[ -]\d{{2,4}}\b", re.I), "[DATE]"),
    (re.compile(rf"\b{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b", re.I), "[DATE]"),
    (re.compile(rf"\b{_MONTH}\.? \d{{4}}\b", re.I), "[DATE]"),
    (
        re.compile(
            rf"\b({_ID_LABEL})(\s*[:#]?\s*)(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{{2,}}(?: \d{{2,}})*\b",
            re.I,
        ),
        r"\1\2[ID]",
    ),
    (re.compile(r"\b\d{6,}\b"), "[ID]"),
    (re.compile(rf"\b({_TITLE})\s+(?:{_NAME_WORD})(?:\s+(?:{_NAME_WORD})){{0,2}}"), r"\1 [NAME]"),
    (
        re.compile(
            rf"\b((?i:Patient(?: name)?|Name)\s*:\s*|(?i:Signed(?: by)?|Reported by|Dictated by|Referred by|Seen by)\s*:?\s*)(?:{_NAME_WORD})(?:[ ,]+(?:{_NAME_WORD})){{0,2}}"
        ),
        r"\1[NAME]",
    ),
)


_PHONE_STEP = 7  # phones after labelled IDs, before bare 6+ digit runs


def _phone(match: re.Match[str]) -> str:
    """Only digit runs long enough to be a phone number (8+ digits) are replaced."""
    return "[PHONE]" if sum(ch.isdigit() for ch in match.group()) >= 8 else match.group()


def scrub_report(text: str) -> str:
    """Replace obvious identifiers in a report by placeholders.

    Emails -> [EMAIL]; dates (ISO, d/m/y, "12 March 2024", "March 12, 2024") -> [DATE];
    phone numbers -> [PHONE]; MRN-like numbers (labelled MRN/ID/NHS/accession, or any run
    of 6+ digits) -> [ID]; names after a title (Dr, Mr, Mrs, Ms, Prof, ...) or after
    "Patient:"/"Name:"/"Signed by" -> [NAME]. Best effort: free text can hide identifiers
    no pattern catches, which is why reports stay inside the workstation.
    """
    for k, (pattern, placeholder) in enumerate(_SCRUBS):
        if k == _PHONE_STEP:
            text = _PHONE.sub(_phone, text)
        text = pattern.sub(placeholder, text)
    return text
