"""Every file of pydicom's test data and pydicom-data either loads or raises CaseError.

pydicom would download files missing from its cache; here that is made impossible, so
the test sees exactly the files installed with pydicom and the pydicom-data package.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data.data_manager as data_manager
import pydicom.data.download as download
import pytest

from moe_app.errors import CaseError
from moe_app.intake import load_upload


def _no_download(*args: object, **kwargs: object) -> Path:
    raise RuntimeError("downloads are disabled in the test suite")


# Before listing: pydicom tries to fetch every file named in its urls.json otherwise.
download._SIMULATE_NETWORK_OUTAGE = True
data_manager.data_path_with_download = _no_download  # type: ignore[assignment]

KEY = bytes(range(32))
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Files with pixel data that cannot load, each for a reason of the file itself.
KNOWN_UNREADABLE = {
    "JPEG-lossy.dcm",  # JPEG stream the libjpeg plugin rejects (pydicom's tests expect it)
    "JPEG2000-embedded-sequence-delimiter.dcm",  # damaged encapsulation
    "MR_truncated.dcm",  # pixel data cut short
    "badVR.dcm",  # damaged image attributes
    "meta_missing_tsyntax.dcm",  # no Rows/Columns
    "nested_priv_SQ.dcm",  # no Rows/Columns
}
MIN_DECODED = 155  # measured: 156 of the 162 files with pixel data load


def _has_pydicom_data() -> bool:
    return "pydicom-data" in data_manager.external_data_sources()


def _corpus() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "download failures occurred": expected, see above
        files = pydicom.data.get_testdata_files("**/*")
    return sorted({f for f in files if os.path.isfile(f)})


CORPUS = _corpus()
_IDS = [
    os.path.basename(f)
    if sum(os.path.basename(g) == os.path.basename(f) for g in CORPUS) == 1
    else "/".join(Path(f).parts[-2:])
    for f in CORPUS
]


@functools.cache
def _outcome(path: str) -> tuple[bool, bool]:
    """(has pixel data, loaded). Raises anything that is neither a load nor a CaseError."""
    logging.disable(logging.WARNING)  # pydicom logs a line per oddity of these test files
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, force=True)
                has_pixels = any(k in ds for k in PIXEL_KEYWORDS)
            except Exception:
                has_pixels = False
            case = load_upload(
                [Path(path)], report_text=None, vitals=None, key=KEY, case_id="corpus"
            )
    except CaseError as exc:
        assert str(exc), "a CaseError must say what is wrong"
        return has_pixels, False
    finally:
        logging.disable(logging.NOTSET)
    assert case.image is not None
    model_input = case.image.model_input
    assert model_input.dtype == np.float32 and model_input.ndim == 2
    assert np.isfinite(model_input).all()
    assert float(model_input.min()) >= 0.0 and float(model_input.max()) <= 1.0
    return has_pixels, True


def test_corpus_is_installed_locally() -> None:
    """pydicom-data is a test dependency; without it the corpus is only pydicom's own files."""
    if not _has_pydicom_data():
        if os.environ.get("MOE_APP_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("pydicom-data is not installed (pip install -e '.[test]')")
        pytest.skip("pydicom-data is not installed")
    assert len(CORPUS) > 200


@pytest.mark.parametrize("path", CORPUS, ids=_IDS)
def test_corpus_file_loads_or_raises_case_error(path: str) -> None:
    _outcome(path)  # any exception other than CaseError fails here


def test_corpus_decode_count(capsys: pytest.CaptureFixture[str], record_property) -> None:
    if not _has_pydicom_data():
        pytest.skip("needs pydicom-data")
    results = {os.path.basename(p): _outcome(p) for p in CORPUS}
    with_pixels = [name for name, (pixels, _) in results.items() if pixels]
    decoded = [name for name, (pixels, ok) in results.items() if pixels and ok]
    failed = sorted(set(with_pixels) - set(decoded))
    record_property("decoded_with_pixel_data", f"{len(decoded)}/{len(with_pixels)}")
    with capsys.disabled():
        print(
            f"\n[intake corpus] {len(decoded)} of {len(with_pixels)} files with pixel data load; "
            f"{len(CORPUS)} files in all; not loadable: {', '.join(failed)}"
        )
    assert len(decoded) >= MIN_DECODED
    assert set(failed) <= KNOWN_UNREADABLE, f"newly failing: {set(failed) - KNOWN_UNREADABLE}"
