"""Inputs for the benchmark: a 2048 x 2048 CR DICOM, the sample cases, a stand-in model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from moe_app.errors import ModelError

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def write_cr_case(folder: Path, size: int = 2048, seed: int = 0) -> Path:
    """A case folder with one uncompressed 12-bit CR chest film (size x size), a report and vitals."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size  # (S, S) each
    lungs = np.exp(-(((xx - 0.33) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2)) + np.exp(
        -(((xx - 0.67) / 0.15) ** 2 + ((yy - 0.5) / 0.3) ** 2))  # (S, S)
    pixels = np.clip(3000 - 1800 * lungs + rng.normal(0, 40, (size, size)), 0, 4095).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CR_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CR_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.PatientID, ds.PatientName, ds.PatientSex = "BENCH-0001", "Bench^Phantom", "F"
    ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "CHEST PA", 1, 1
    ds.set_pixel_data(pixels, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / "image.dcm", enforce_file_format=True)
    (folder / "report.txt").write_text("PA chest. Patchy consolidation in the right lower lobe.\n")
    (folder / "vitals.json").write_text(json.dumps({"heart_rate_bpm": 104, "temperature_c": 38.4,
                                                    "spo2_percent": 93, "sex": "F"}))
    return folder


def case_folders(sample_dir: Path | None, work: Path, n: int = 20) -> tuple[list[Path], str]:
    """The sample cases if there are any, else `n` freshly generated synthetic cases."""
    if sample_dir is not None and sample_dir.is_dir():
        found = sorted(p for p in sample_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if found:
            return found, f"{len(found)} sample cases from {sample_dir}"
    from moe_app.synth.dataset import generate_dataset
    from moe_app.synth.generate import SynthConfig

    out = work / "synth"
    generate_dataset(out, n, seed=7, cfg=SynthConfig(), workers=1, progress=False)
    return sorted(p for p in out.iterdir() if p.is_dir()), f"{n} generated synthetic cases (512 px)"


def stand_in_model(folder: Path, like: Path | None = None, seed: int = 0) -> Path:
    """A randomly initialised model saved like a trained one, with the config of `like`
    (a model folder's config.json) when there is one, else the default config."""
    import torch

    from moe_app.model import MoEConfig, MoEModel, save_model
    from moe_app.model.text import load_pretrained_tokenizer, train_wordpiece
    from moe_app.synth.generate import SynthConfig, generate_case

    cfg = MoEConfig()
    if like is not None and (like / "config.json").is_file():
        cfg = MoEConfig.from_json((like / "config.json").read_text())
    if cfg.text_encoder == "pretrained":
        tokenizer = load_pretrained_tokenizer(cfg)
    else:
        reports = [generate_case(i, seed, SynthConfig(image_size=64)).report or "" for i in range(200)]
        tokenizer = train_wordpiece(reports, cfg.vocab_size)
    torch.manual_seed(seed)
    model = MoEModel(cfg.replace(vocab_size=tokenizer.vocab_size)).eval()
    save_model(model, tokenizer, folder)
    if not (folder / "model.safetensors").is_file():
        raise ModelError("could not write the stand-in model")
    return folder
