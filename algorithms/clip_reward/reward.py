"""The VLM success detector of PAPERS.md §6 (arXiv 2312.09187). Pure torch, no Ray.

With f the image encoder, g the text encoder, both outputs L2-normalised, and 𝓛 the candidate set (the goal
set — every goal in play — plus configured extra negatives):

    P(l | x) = exp(⟨f(x), g(l)⟩ / τ) / Σ_{l' ∈ 𝓛} exp(⟨f(x), g(l')⟩ / τ)
    r(x, l)  = 1[ P(l | x) > β ]

`goal_probabilities` and `thresholded_reward` are the two equations on tensors; `ClipReward` wraps a loaded
model: it validates requests, caches g over each goal set, and scores a whole batch of requests with one
image forward pass (what a Serve replica does with a dynamic batch). A bad request fails alone, with a
`RewardInputError` that says what is wrong; the others in the batch are still answered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from armillary.algorithms.clip_reward.model_settings import RewardConfig
from armillary.algorithms.clip_reward.models import ClipBundle


class RewardInputError(ValueError):
    """A request the reward model cannot score: the message says which field and why."""


def goal_probabilities(image_embeds: torch.Tensor, text_embeds: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(l | x): float [B, K] for image embeddings [B, D] and candidate text embeddings [K, D] (any norm)."""
    if temperature <= 0:
        raise ValueError(f"temperature τ must be > 0, got {temperature}")
    similarity = F.normalize(image_embeds.float(), dim=-1) @ F.normalize(text_embeds.float(), dim=-1).T
    return torch.softmax(similarity / temperature, dim=-1)


def thresholded_reward(
    probabilities: torch.Tensor, goal_index: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, P(goal | x)): float [B] each; r = 1[P(goal | x) > β] for probabilities [B, K], goal_index long [B]."""
    p_goal = probabilities.gather(1, goal_index.to(probabilities.device).view(-1, 1)).squeeze(1)
    return (p_goal > threshold).float(), p_goal


@dataclass(frozen=True)
class RewardRequest:
    """Frames uint8 [B, H, W, 3] (or one frame [H, W, 3]), one goal text per frame, and the goal set they come
    from (the goal's negatives)."""

    frames: np.ndarray
    goals: Sequence[str]
    goal_set: Sequence[str]


@dataclass(frozen=True)
class RewardOutput:
    reward: np.ndarray  # float32 [B], 0 or 1
    probability: np.ndarray  # float32 [B], P(goal | frame): the dense signal
    candidates: tuple[str, ...]  # 𝓛, in the order of the softmax


class ClipReward:
    """r = 1[P(goal | x) > β] from a loaded CLIP model; text embeddings cached per goal set."""

    def __init__(self, bundle: ClipBundle, config: RewardConfig | None = None, text_cache_size: int = 256,
                 forward_chunk: int | None = None):
        self.bundle = bundle
        # A served batch can hold thousands of frames (several env runners' samples). On CPU one forward pass
        # over all of them ran slower per frame than passes of ~128-256 (benchmarks/clip_reward_serving.py,
        # in-process: 128 frames ~1.2-1.4x the rate of 512); a GPU wants the biggest batch that fits.
        self.forward_chunk = forward_chunk or (256 if torch.device(bundle.device).type == "cpu" else 4096)
        self.config = config or RewardConfig()
        self.temperature = self.config.temperature or 1.0 / bundle.logit_scale
        self._text_cache: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()
        self._text_cache_size = text_cache_size
        self.text_cache_misses = 0

    # --- validation ----------------------------------------------------------------------------------------

    def candidates(self, goal_set: Sequence[str]) -> tuple[str, ...]:
        """𝓛 for a goal set: its goals, then the configured extra negatives it does not already hold."""
        if isinstance(goal_set, str) or not isinstance(goal_set, Sequence):
            raise RewardInputError(f"goal_set must be a list of texts, got {type(goal_set).__name__}")
        goal_set = tuple(goal_set)
        if not goal_set:
            raise RewardInputError("goal_set is empty: a goal needs at least itself as a candidate")
        if any(not isinstance(goal, str) or not goal.strip() for goal in goal_set):
            raise RewardInputError("goal_set must hold non-empty texts")
        if len(set(goal_set)) != len(goal_set):
            raise RewardInputError("goal_set has duplicate goals")
        return goal_set + tuple(text for text in self.config.extra_negatives if text not in goal_set)

    def validate(self, request: RewardRequest) -> tuple[np.ndarray, tuple[str, ...], torch.Tensor]:
        """(frames [B, H, W, 3], candidates, goal index [B]) or a RewardInputError."""
        frames = request.frames
        if not isinstance(frames, np.ndarray):
            raise RewardInputError(f"frames must be a numpy array, got {type(frames).__name__}")
        if frames.dtype != np.uint8:
            raise RewardInputError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise RewardInputError(f"frames must be [batch, height, width, 3] or [height, width, 3], got {frames.shape}")
        side = self.bundle.image_size
        if frames.shape[1:3] != (side, side) and not self.config.resize_frames:
            raise RewardInputError(f"frames are {frames.shape[1:3]} pixels but the model takes ({side}, {side})")
        goals = [request.goals] if isinstance(request.goals, str) else list(request.goals)
        if len(goals) != frames.shape[0]:
            raise RewardInputError(f"{frames.shape[0]} frames but {len(goals)} goals: give one goal per frame")
        if not goals:
            raise RewardInputError("the request holds no frames")
        candidates = self.candidates(request.goal_set)
        position = {text: i for i, text in enumerate(candidates[: len(tuple(request.goal_set))])}
        unknown = sorted({goal for goal in goals if goal not in position}, key=str)
        if unknown:
            raise RewardInputError(f"unknown goal {unknown[0]!r}: not in the goal set ({len(position)} goals)")
        return frames, candidates, torch.tensor([position[goal] for goal in goals])

    # --- embeddings ----------------------------------------------------------------------------------------

    def text_embeddings(self, candidates: tuple[str, ...]) -> torch.Tensor:
        """g over 𝓛, L2-normalised [K, D]; computed once per candidate set (LRU)."""
        cached = self._text_cache.get(candidates)
        if cached is None:
            self.text_cache_misses += 1
            cached = F.normalize(self.bundle.embed_texts(candidates).float(), dim=-1)
            self._text_cache[candidates] = cached
            if len(self._text_cache) > self._text_cache_size:
                self._text_cache.popitem(last=False)
        else:
            self._text_cache.move_to_end(candidates)
        return cached

    def image_embeddings(self, frames: np.ndarray) -> torch.Tensor:
        """f over frames [B, H, W, 3], L2-normalised [B, D], in forward passes of at most `forward_chunk` frames."""
        chunk = self.forward_chunk
        parts = [self.bundle.embed_images(frames[i : i + chunk], resize=self.config.resize_frames) for i in range(0, len(frames), chunk)]
        return F.normalize(torch.cat(parts).float(), dim=-1)

    # --- scoring -------------------------------------------------------------------------------------------

    def __call__(self, frames: np.ndarray, goals: Sequence[str], goal_set: Sequence[str]) -> RewardOutput:
        result = self.score_batch([RewardRequest(frames, goals, goal_set)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def score_batch(self, requests: Sequence[RewardRequest]) -> list[RewardOutput | RewardInputError]:
        """Score many requests with one image forward pass; a bad request gets its error in its slot."""
        results: list[RewardOutput | RewardInputError | None] = [None] * len(requests)
        valid = []
        for slot, request in enumerate(requests):
            try:
                valid.append((slot, *self.validate(request)))
            except RewardInputError as error:
                results[slot] = error
        if valid:
            frames = [v[1] for v in valid]
            if len({f.shape[1:3] for f in frames}) > 1:  # mixed sizes (resize on): one pass per size
                images = torch.cat([self.image_embeddings(f) for f in frames])
            else:
                images = self.image_embeddings(np.concatenate(frames))
            start = 0
            for slot, frames_i, candidates, goal_index in valid:
                stop = start + frames_i.shape[0]
                probabilities = goal_probabilities(images[start:stop], self.text_embeddings(candidates), self.temperature)
                reward, p_goal = thresholded_reward(probabilities, goal_index, self.config.threshold)
                results[slot] = RewardOutput(
                    reward=reward.cpu().numpy().astype(np.float32),
                    probability=p_goal.cpu().numpy().astype(np.float32),
                    candidates=candidates,
                )
                start = stop
        return results  # type: ignore[return-value]

