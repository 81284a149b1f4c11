"""`moe-app train`, `moe-app evaluate`, `moe-app compare-encoders`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

DEFAULT_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "report_generalisation.csv"


def train(
    data: Path = typer.Option(..., "--data", help="Folder with manifest.csv and case folders (moe-app synth)."),
    out: Path = typer.Option(..., "--out", help="Model folder to write (e.g. assets/model)."),
    seed: int = typer.Option(0, help="Seed for weights, data order, noise and dropout."),
    epochs: int = typer.Option(16, help="Maximum epochs (early stopping on validation)."),
    top_k: int = typer.Option(2, "--top-k", help="Experts active per case."),
    image_size: int = typer.Option(128, "--image-size"),
    text_encoder: str = typer.Option("bert_small", help="bert_small (trained here) or pretrained (frozen folder)."),
    text_encoder_path: str = typer.Option("", help="Local encoder folder (default: packaged all-MiniLM-L6-v2)."),
    patience: int = typer.Option(6, help="Early stopping: epochs without validation improvement."),
    select_on: str = typer.Option("calibrated_nll", "--select-on",
                                  help="Early stopping metric: nll, or calibrated_nll (after temperature scaling)."),
    calibrate_on: str = typer.Option("brier", "--calibrate-on",
                                     help="Score the calibration temperatures minimise on validation: brier or nll."),
    threads: int = typer.Option(1, help="CPU threads for torch (1 is fastest on a busy 2-core machine)."),
    baselines: bool = typer.Option(True, help="Also train the dense and single-modality baselines."),
    rebuild_cache: bool = typer.Option(False, help="Re-decode every case instead of using the feature cache."),
    config_json: Path | None = typer.Option(None, "--config-json",
                                            help="JSON object of extra MoEConfig fields (e.g. expert sizes)."),
) -> None:
    """Train the MoE (and baselines), calibrate, evaluate on the test split, write the model folder."""
    import time

    from moe_app.model import load_model
    from moe_app.model.config import MoEConfig, TrainConfig
    from moe_app.train.data import build_cache
    from moe_app.train.encoders import evaluate_handwritten
    from moe_app.train.report import model_card, print_report
    from moe_app.train.run import _jsonable, data_summary, run_training

    cfg = MoEConfig(top_k=top_k, image_size=image_size, text_encoder=text_encoder,
                    text_encoder_path=text_encoder_path)
    if config_json is not None:
        cfg = MoEConfig.from_json(json.dumps({**json.loads(cfg.to_json()), **json.loads(config_json.read_text())}))
    if select_on not in ("nll", "calibrated_nll"):
        raise typer.BadParameter("--select-on must be nll or calibrated_nll")
    if calibrate_on not in ("brier", "nll"):
        raise typer.BadParameter("--calibrate-on must be brier or nll")
    tcfg = TrainConfig(seed=seed, epochs=epochs, threads=threads, patience=patience, select_on=select_on,
                       calibrate_on=calibrate_on)
    t0 = time.perf_counter()
    table = build_cache(data, cfg.image_size, rebuild=rebuild_cache)
    cache_seconds = time.perf_counter() - t0
    metrics = run_training(table, out, cfg, tcfg, baselines=baselines, data_summary=data_summary(table, data))
    metrics["cache_seconds"] = cache_seconds  # ~0 when the feature cache already existed
    if DEFAULT_SET.is_file():
        lm = load_model(out)
        metrics["handwritten"] = evaluate_handwritten(lm.model, lm.tokenizer, DEFAULT_SET)
    prev = out / "encoder_comparison.json"
    if prev.is_file():
        metrics["encoder_comparison"] = json.loads(prev.read_text())
    synth_seed = metrics["data"].get("synth_seed", "<seed of the data set>")
    reproduce = (f"moe-app synth --n {len(table.case_ids)} --seed {synth_seed} --out {data}\n"
                 f"moe-app train --data {data} --out {out} --seed {seed} --epochs {epochs} --top-k {top_k} "
                 f"--image-size {image_size} --text-encoder {text_encoder} --threads {threads} "
                 f"--patience {patience} --select-on {select_on} --calibrate-on {calibrate_on}"
                 + (f" --config-json {config_json}" if config_json is not None else ""))
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2) + "\n")
    (out / "model_card.md").write_text(model_card(metrics, reproduce))
    print_report(metrics)


def evaluate(
    model: Path = typer.Option(Path("assets/model"), "--model", help="Model folder."),
    data: Path = typer.Option(..., "--data", help="Folder with manifest.csv and case folders."),
    split: str = typer.Option("test", help="train, val or test."),
    out: Path | None = typer.Option(None, "--out", help="Write the metrics JSON here."),
) -> None:
    """Evaluate a trained model on one split (all modalities, each removed, routing)."""
    from moe_app.model import load_model
    from moe_app.train.data import build_cache
    from moe_app.train.report import print_report
    from moe_app.train.run import _jsonable, evaluate_model

    lm = load_model(model)
    table = build_cache(data, lm.cfg.image_size)
    rows = table.rows(split)
    if len(rows) == 0:
        raise typer.BadParameter(f"no {split} cases in {data}")
    res = evaluate_model(lm.model, table.inputs(rows, lm.tokenizer, lm.cfg), table.labels[rows])
    res.pop("_probs")
    metrics = {"moe": res}
    print_report(metrics)
    if out is not None:
        out.write_text(json.dumps(_jsonable(metrics), indent=2) + "\n")


def compare_encoders(
    data: Path = typer.Option(..., "--data"),
    report_set: Path = typer.Option(DEFAULT_SET, "--set", help="Hand-written reports CSV (label, report)."),
    out: Path | None = typer.Option(None, "--out", help="Write the comparison JSON here."),
    epochs: int = typer.Option(8),
    seed: int = typer.Option(0),
) -> None:
    """Train each report-encoder candidate as a report-only classifier; score it on hand-written reports."""
    from moe_app.model.config import MoEConfig, TrainConfig
    from moe_app.model.text import load_pretrained_tokenizer, train_wordpiece
    from moe_app.train.data import build_cache
    from moe_app.train.encoders import compare_encoders as run

    base = MoEConfig()
    table = build_cache(data, base.image_size)
    texts = [table.reports[i] for i in table.rows("train").tolist() if table.reports[i]]
    small_tok = train_wordpiece(texts, 2000)
    pre = base.replace(text_encoder="pretrained")
    pre_tok = load_pretrained_tokenizer(pre)
    candidates = {
        "bert_small (WordPiece + BertModel trained here)": (base.replace(vocab_size=small_tok.vocab_size), small_tok),
        "all-MiniLM-L6-v2 (frozen, head trained here)": (pre.replace(vocab_size=pre_tok.vocab_size), pre_tok),
    }
    res = run(table, report_set, candidates, TrainConfig(seed=seed), epochs=epochs)
    for name, r in res.items():
        typer.echo(f"{name}: val {r['val_accuracy']:.3f}, hand-written {r['handwritten_accuracy']:.3f}, "
                   f"{r['seconds']:.0f} s")
    if out is not None:
        out.write_text(json.dumps(res, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("compare-encoders")(compare_encoders)
