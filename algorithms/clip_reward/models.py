"""CLIP models for small rendered frames: sizes, the tokenizer, save/load in the standard format, preprocessing.

No pretrained weights can be downloaded here, so models are built from a transformers `CLIPConfig` at the
env's image size and trained by algorithms/clip_reward/finetune.py. They are saved with `save_pretrained` (config,
safetensors weights, tokenizer files, an image-processor config), so `load_clip` reads them exactly as it
would read a hub checkpoint: `CLIPModel.from_pretrained` + `AutoTokenizer.from_pretrained` +
`AutoImageProcessor.from_pretrained` (only its mean/std and size are used; the resize/normalise is done in
torch on whole batches, which is what a reward server needs).

The tokenizer is word-level over the environment's vocabulary (the `tokenizers` library), with [BOS] ... [EOS]
around every text: CLIP pools the text at the first [EOS]. Its id is kept away from 2, which transformers'
CLIP treats as the legacy "pool at the largest id" convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoTokenizer, CLIPConfig, CLIPModel, PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0..3: EOS is 3, never 2 (see the module docstring)
MAX_TEXT_TOKENS = 16
# The values OpenAI's CLIP normalises with; kept so our checkpoints read like any CLIP checkpoint.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipSize:
    hidden: int  # width of both towers
    layers: int  # transformer layers of the vision tower
    text_layers: int
    heads: int
    projection: int  # the shared embedding dimension of f(x) and g(l)

    def num_parameters(self, image_size: int, patch_size: int, vocab_size: int) -> int:
        return sum(p.numel() for p in build_clip(self, image_size, patch_size, vocab_size).parameters())


# Ordered by size. The text side is tiny (15 words + 4 special tokens), so the towers grow mostly in vision depth.
MODEL_SIZES: dict[str, ClipSize] = {
    "tiny": ClipSize(hidden=32, layers=1, text_layers=1, heads=2, projection=32),
    "small": ClipSize(hidden=64, layers=2, text_layers=1, heads=4, projection=64),
    "medium": ClipSize(hidden=128, layers=4, text_layers=2, heads=4, projection=128),
    "large": ClipSize(hidden=192, layers=6, text_layers=2, heads=6, projection=192),
}


def build_tokenizer(vocabulary: Sequence[str]) -> PreTrainedTokenizerFast:
    """A lower-casing, whitespace-splitting word-level tokenizer over `vocabulary`, [BOS] text [EOS]."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    words = sorted({w.lower() for w in vocabulary} - set(SPECIAL_TOKENS))
    if not words:
        raise ValueError("the vocabulary is empty")
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *words))}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=MAX_TEXT_TOKENS,
    )


def build_clip(
    size: ClipSize | str, image_size: int, patch_size: int, vocab_size: int, seed: int | None = None
) -> CLIPModel:
    """A randomly initialised CLIPModel for `image_size` frames cut into `patch_size` patches."""
    if isinstance(size, str):
        try:
            size = MODEL_SIZES[size]
        except KeyError:
            raise ValueError(f"unknown model size {size!r}; sizes: {', '.join(MODEL_SIZES)}") from None
    if image_size % patch_size:
        raise ValueError(f"image_size={image_size} is not a multiple of patch_size={patch_size}")
    common = dict(hidden_size=size.hidden, intermediate_size=4 * size.hidden, num_attention_heads=size.heads)
    config = CLIPConfig(
        text_config=dict(
            **common,
            num_hidden_layers=size.text_layers,
            vocab_size=vocab_size,
            max_position_embeddings=MAX_TEXT_TOKENS,
            pad_token_id=SPECIAL_TOKENS.index(PAD),
            bos_token_id=SPECIAL_TOKENS.index(BOS),
            eos_token_id=SPECIAL_TOKENS.index(EOS),
        ),
        vision_config=dict(**common, num_hidden_layers=size.layers, image_size=image_size, patch_size=patch_size),
        projection_dim=size.projection,
    )
    if seed is not None:
        torch.manual_seed(seed)
    return CLIPModel(config)


def save_clip(model: CLIPModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """The standard layout: config.json, model.safetensors, tokenizer files, preprocessor_config.json."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    side = model.config.vision_config.image_size
    CLIPImageProcessorPil(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}, image_mean=CLIP_MEAN, image_std=CLIP_STD
    ).save_pretrained(path)
    return path


@dataclass
class ClipBundle:
    """A loaded model with what it takes to feed it."""

    model: CLIPModel
    tokenizer: PreTrainedTokenizerFast
    image_size: int
    mean: torch.Tensor  # [3]
    std: torch.Tensor  # [3]
    device: torch.device

    @torch.inference_mode()
    def embed_images(self, frames: np.ndarray | torch.Tensor, resize: bool = False) -> torch.Tensor:
        """f(x), not normalised: float [B, D] for RGB uint8 frames [B, H, W, 3]."""
        pixels = preprocess_frames(frames, self.image_size, self.mean, self.std, resize=resize).to(self.device)
        return self.model.get_image_features(pixel_values=pixels).pooler_output

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """g(l), not normalised: float [K, D]."""
        tokens = self.tokenizer(list(texts), padding=True, return_tensors="pt").to(self.device)
        return self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).pooler_output

    @property
    def logit_scale(self) -> float:
        """1 / τ as learned by the model."""
        return float(self.model.logit_scale.detach().exp())


def load_clip(name_or_path: str | Path, device: str | torch.device = "cpu") -> ClipBundle:
    """A CLIP checkpoint from a local folder or a hub name (where a hub is reachable): the same code path."""
    source = str(name_or_path)
    if Path(source).exists() and not (Path(source) / "config.json").exists():
        raise FileNotFoundError(f"{source} has no config.json: not a saved model folder")
    model = CLIPModel.from_pretrained(source).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    try:
        processor = AutoImageProcessor.from_pretrained(source)
        mean, std = processor.image_mean, processor.image_std
    except OSError:  # a checkpoint without a preprocessor config: CLIP's own statistics
        mean, std = CLIP_MEAN, CLIP_STD
    return ClipBundle(
        model=model,
        tokenizer=tokenizer,
        image_size=model.config.vision_config.image_size,
        mean=torch.tensor(mean, dtype=torch.float32),
        std=torch.tensor(std, dtype=torch.float32),
        device=torch.device(device),
    )


def preprocess_frames(
    frames: np.ndarray | torch.Tensor,
    image_size: int,
    mean: Sequence[float] | torch.Tensor = CLIP_MEAN,
    std: Sequence[float] | torch.Tensor = CLIP_STD,
    resize: bool = False,
) -> torch.Tensor:
    """RGB uint8 [B, H, W, 3] → normalised float32 [B, 3, S, S], S = image_size.

    Frames of another size are refused unless `resize` (bilinear, antialiased); the error names both sizes.
    """
    frames = torch.as_tensor(frames)
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [batch, height, width, 3], got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("frames is an empty batch")
    pixels = frames.permute(0, 3, 1, 2).float().div_(255.0)
    if tuple(pixels.shape[-2:]) != (image_size, image_size):
        if not resize:
            raise ValueError(
                f"frames are {tuple(frames.shape[1:3])} pixels but the model takes ({image_size}, {image_size}); "
                "render at the model's size or enable resizing"
            )
        pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size), mode="bilinear", antialias=True)
    mean = torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean) / std
