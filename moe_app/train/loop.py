"""The training loop: seeded, modality dropout, live progress bar, early stopping on val."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from moe_app.model.config import TrainConfig
from moe_app.model.experts import EXPERTS
from moe_app.model.features import ModelInputs
from moe_app.model.losses import routing_bias, total_loss
from moe_app.model.moe import MoEModel, MoEOutput
from moe_app.train.evaluate import fit_temperature, mixture_at_temperature


@dataclass
class FitResult:
    best_epoch: int
    best_val_nll: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int, threads: int) -> torch.Generator:
    """Seed torch, use deterministic kernels where available, return the data-order generator."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def modality_dropout(x: ModelInputs, p: float, gen: torch.Generator) -> ModelInputs:
    """Hide each present modality with probability p, always keeping at least one."""
    if p <= 0:
        return x
    keep = (torch.rand(x.presence.shape, generator=gen) >= p).float() * x.presence  # (B, 3)
    empty = keep.sum(1) == 0  # (B,)
    keep[empty] = x.presence[empty]
    return x.with_presence(keep)


def batched_forward(model: MoEModel, x: ModelInputs, batch_size: int = 256, **kw: object) -> MoEOutput:
    """Run the model in eval mode over a large input in batches, concatenating the outputs."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            rows = torch.arange(start, min(start + batch_size, len(x)))
            outs.append(model(x.select(rows), **kw))
    return MoEOutput(**{k: torch.cat([getattr(o, k) for o in outs]) for k in outs[0].__dataclass_fields__})


def val_nll(model: MoEModel, x: ModelInputs, y: torch.Tensor, dense: bool) -> tuple[float, float, float]:
    """Validation NLL, accuracy, and NLL after fitting the calibration temperature on the same split.

    The calibrated NLL is what early stopping watches by default: the model is temperature-scaled
    after training anyway, so an epoch should not lose to an earlier one merely for being more
    confident; it should lose when its ranking of the diagnoses is worse.
    """
    out = batched_forward(model, x, dense=dense)
    p = out.probs.gather(1, y.view(-1, 1)).clamp(min=1e-8)  # (N, 1)
    t = fit_temperature(out, y)  # for the raw expert logits
    pc = mixture_at_temperature(out, t).gather(1, y.view(-1, 1)).clamp(min=1e-8)  # (N, 1)
    return float(-p.log().mean()), float((out.probs.argmax(1) == y).float().mean()), float(-pc.log().mean())


def fit(model: MoEModel, train: ModelInputs, y_train: torch.Tensor, val: ModelInputs, y_val: torch.Tensor,
        tcfg: TrainConfig, gen: torch.Generator, dense: bool = False, desc: str = "MoE",
        modality_dropout_p: float | None = None) -> FitResult:
    """Train in place; the weights of the best validation epoch are restored at the end."""
    cfg = model.cfg
    p_drop = cfg.modality_dropout if modality_dropout_p is None else modality_dropout_p
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps_per_epoch = math.ceil(len(train) / tcfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.epochs * steps_per_epoch,
                                                pct_start=0.1)
    modalities = tuple(EXPERTS[n].modality for n in cfg.experts)
    best, best_state, best_epoch, history, bad = math.inf, None, 0, [], 0
    t0 = time.perf_counter()
    for epoch in range(1, tcfg.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=gen)
        bar = tqdm(range(steps_per_epoch), desc=f"{desc} epoch {epoch}", leave=False, unit="batch")
        run_loss, run_acc, seen = 0.0, 0.0, 0
        for step in bar:
            rows = order[step * tcfg.batch_size : (step + 1) * tcfg.batch_size]
            x = modality_dropout(train.select(rows), p_drop, gen)
            y = y_train[rows]
            out = model(x, dense=dense, run_all=True)
            bias = routing_bias(y, modalities, cfg.labels, cfg.route_bias_multimodal, cfg.route_prior, cfg.experts)
            terms = total_loss(out.probs, out.gate_logits, out.gate_probs, out.selected, out.expert_logits,
                               out.ran, y, cfg.w_balance, cfg.w_z, cfg.w_expert, cfg.w_route, cfg.tau_route,
                               bias)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            n = len(rows)
            run_loss += float(terms["loss"].detach()) * n
            run_acc += float((out.probs.argmax(1) == y).float().sum())
            seen += n
            bar.set_postfix(loss=f"{run_loss / seen:.3f}", acc=f"{run_acc / seen:.3f}")
        nll, acc, cal_nll = val_nll(model, val, y_val, dense)
        history.append({"epoch": epoch, "train_loss": run_loss / seen, "train_acc": run_acc / seen,
                        "val_nll": nll, "val_acc": acc, "val_nll_calibrated": cal_nll})
        tqdm.write(f"{desc} epoch {epoch}: train loss {run_loss / seen:.3f} acc {run_acc / seen:.3f} | "
                   f"val nll {nll:.3f} (calibrated {cal_nll:.3f}) acc {acc:.3f}")
        score = cal_nll if tcfg.select_on == "calibrated_nll" else nll
        improved = score < best - 1e-4
        if improved:
            best, best_epoch, bad = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if bad >= tcfg.patience:
                tqdm.write(f"{desc}: early stop, best epoch {best_epoch}")
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_epoch=best_epoch, best_val_nll=best, seconds=time.perf_counter() - t0, history=history)
