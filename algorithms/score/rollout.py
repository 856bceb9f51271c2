"""Two-turn episodes with any transformers causal LM: batched sampling with a KV cache, greedy evaluation,
and the padded tensors the learner needs. No Ray.

    turn 1:  context c1 = task.first_turn_prompt(x)            → y1 ~ π(· | c1)
    turn 2:  context c2 = task.second_turn_prompt(x, y1)       → y2 ~ π(· | c2)

The task's prompts are raw text, or a conversation rendered in the model's chat template (chat.ChatTask, chosen by
chat.for_tokenizer): then the rendered text already holds the template's special tokens and is tokenized without
adding any (as apply_chat_template does).

The learner scores each turn on its own sequence (c_t ⊕ y_t, with y_t's sampled token ids, not a
re-tokenisation of their text), so the tensors are exact for any tokenizer and any prompt format.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import torch

from armillary.algorithms.score.chat import has_chat_template
from armillary.algorithms.score.losses import correction_pairs, self_correction_metrics
from armillary.algorithms.score.tasks.base import Problem, Task, verdicts

FLAGS = "score/verifier_flags"


@dataclass(frozen=True)
class Generation:
    texts: list[str]  # decoded responses, special tokens dropped
    token_ids: list[list[int]]  # sampled ids, <eos> included where the response finished
    finished: list[bool]  # False where max_new_tokens cut the response


def _prompt_ids(tokenizer, prompts: Sequence[str]) -> list[list[int]]:
    ids = tokenizer(list(prompts), add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    for prompt, row in zip(prompts, ids):
        if not row:
            raise ValueError(f"prompts: {prompt!r} encodes to no tokens")
    return ids


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def _cache_argument(model) -> str:
    """transformers 5 names the KV cache `cache` (argument and output); older and custom models `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Generation:
    """Sample (or, with greedy, take the argmax of) up to max_new_tokens per prompt, the batch at once, reusing
    the KV cache: one forward pass over the left-padded prompts, then one token per step. A row stops at <eos>."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: must be ≥ 1, got {max_new_tokens}")
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature: must be > 0 when sampling, got {temperature} (use greedy=True for argmax)")
    if not prompts:
        return Generation([], [], [])
    device = next(model.parameters()).device
    if generator is not None and not greedy and generator.device.type != device.type:
        raise ValueError(f"generator: on {generator.device}, but the model is on {device}; make it with "
                         f"torch.Generator(device=...) on the model's device")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    if eos is None or pad is None:
        raise ValueError("tokenizer: needs eos_token_id and pad_token_id (load it with model.load_policy)")
    input_ids, attention = _left_pad(_prompt_ids(tokenizer, prompts), pad, device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    batch = input_ids.shape[0]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    out_tokens = torch.full((batch, max_new_tokens), pad, dtype=torch.long, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)

    cache_name = _cache_argument(model)
    output = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, logits = getattr(output, cache_name), output.logits[:, -1, :]
    next_position = positions[:, -1:] + 1
    for step in range(max_new_tokens):
        if greedy:
            token = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        token = torch.where(done, torch.full_like(token, pad), token)
        out_tokens[:, step] = token
        lengths += (~done).long()
        done |= token == eos
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        attention = torch.cat([attention, torch.ones((batch, 1), dtype=attention.dtype, device=device)], dim=1)
        output = model(input_ids=token[:, None], attention_mask=attention, position_ids=next_position,
                       use_cache=True, **{cache_name: cache})
        cache, logits = getattr(output, cache_name), output.logits[:, -1, :]
        next_position = next_position + 1

    token_ids = [out_tokens[i, : lengths[i]].tolist() for i in range(batch)]
    texts = tokenizer.batch_decode(token_ids, skip_special_tokens=True)
    return Generation(texts=texts, token_ids=token_ids, finished=[bool(d) for d in done.tolist()])


@dataclass(frozen=True)
class TurnTensors:
    """One turn of a batch, right-padded: input_ids [B, T], attention_mask [B, T], response_mask [B, T]
    (1 on the response's sampled tokens — the actions whose log-probs the learner needs)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor


def turn_tensors(tokenizer, prompts: Sequence[str], responses: Sequence[Sequence[int]]) -> TurnTensors:
    if len(prompts) != len(responses):
        raise ValueError(f"responses: {len(responses)} given for {len(prompts)} prompts")
    rows, masks = [], []
    for prompt_ids, response in zip(_prompt_ids(tokenizer, prompts), responses):
        rows.append(list(prompt_ids) + list(response))
        masks.append([0] * len(prompt_ids) + [1] * len(response))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    response_mask = torch.zeros_like(ids)
    for i, (row, mask) in enumerate(zip(rows, masks)):
        ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        response_mask[i, : len(row)] = torch.tensor(mask)
    return TurnTensors(ids, attention, response_mask)


@dataclass(frozen=True)
class EpisodeBatch:
    """k episodes per problem, problem-major (rows [i·k, (i+1)·k) share problem i)."""

    problems: list[Problem]
    group_size: int
    first_prompts: list[str]
    first: Generation
    second_prompts: list[str]
    second: Generation
    correct_turn1: list[bool]
    correct_turn2: list[bool]
    answers_turn1: list[str | None]
    answers_turn2: list[str | None]
    flags_turn1: list[tuple[str, ...]]  # signs of gaming the verifier it saw in each response (tasks.Verdict.flags)
    flags_turn2: list[tuple[str, ...]]

    def tensors(self, tokenizer) -> tuple[TurnTensors, TurnTensors]:
        return (turn_tensors(tokenizer, self.first_prompts, self.first.token_ids),
                turn_tensors(tokenizer, self.second_prompts, self.second.token_ids))

    @property
    def flagged(self) -> int:
        """How many responses (of both turns) the verifier flagged as gaming it."""
        return sum(bool(f) for f in self.flags_turn1) + sum(bool(f) for f in self.flags_turn2)

    def metrics(self) -> dict[str, float]:
        """The self-correction figures, and `score/verifier_flags`: the count of flagged responses (a count, not
        a fraction, so that a single hacking response shows)."""
        figures = self_correction_metrics(self.correct_turn1, self.correct_turn2, self.answers_turn1, self.answers_turn2)
        return {**figures, FLAGS: float(self.flagged)}

    def pair_sft_turn2(self, tokenizer) -> tuple[TurnTensors, torch.Tensor]:
        """Pair-SFT's turn-2 rows: each wrong first attempt's own turn-2 context (problem, that attempt, the
        instruction) with a correct sibling's first attempt as the response (losses.correction_pairs); rows with
        nothing to pair keep their sampled second attempt and get kept = 0. Returns (tensors, kept [B])."""
        targets = correction_pairs(self.correct_turn1, self.group_size)
        responses = [self.first.token_ids[t] if t is not None else self.second.token_ids[i] for i, t in enumerate(targets)]
        kept = torch.tensor([t is not None for t in targets], dtype=torch.float32)
        return turn_tensors(tokenizer, self.second_prompts, responses), kept


def run_episodes(
    model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    *,
    group_size: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> EpisodeBatch:
    """Both turns for every problem, `group_size` samples each; verified with the task's oracle."""
    if group_size < 1:
        raise ValueError(f"group_size: must be ≥ 1, got {group_size}")
    if not problems:
        raise ValueError("problems: empty")
    repeated = [p for p in problems for _ in range(group_size)]
    first_prompts = [task.first_turn_prompt(p) for p in repeated]
    sampling = dict(max_new_tokens=max_new_tokens, temperature=temperature, greedy=greedy, generator=generator)
    first = generate(model, tokenizer, first_prompts, **sampling)
    second_prompts = [task.second_turn_prompt(p, y1) for p, y1 in zip(repeated, first.texts)]
    second = generate(model, tokenizer, second_prompts, **sampling)
    verdicts1, verdicts2 = verdicts(task, repeated, first.texts), verdicts(task, repeated, second.texts)
    return EpisodeBatch(
        problems=repeated,
        group_size=group_size,
        first_prompts=first_prompts,
        first=first,
        second_prompts=second_prompts,
        second=second,
        correct_turn1=[v.passed for v in verdicts1],
        correct_turn2=[v.passed for v in verdicts2],
        answers_turn1=[task.final_answer(p, y) for p, y in zip(repeated, first.texts)],
        answers_turn2=[task.final_answer(p, y) for p, y in zip(repeated, second.texts)],
        flags_turn1=[v.flags for v in verdicts1],
        flags_turn2=[v.flags for v in verdicts2],
    )


def evaluate_greedy(model, tokenizer, task: Task, problems: Sequence[Problem], *, max_new_tokens: int = 64,
                    batch_size: int = 64, rows: list[dict] | None = None) -> dict[str, float]:
    """The self-correction metrics of greedy two-turn episodes on `problems` (Acc@t1, Acc@t2, Δ, Δi→c, Δc→i,
    change rate) and the count of responses the verifier flagged (`score/verifier_flags`), in batches. With `rows`,
    one dict per episode is appended to it (problem, both responses, their answers, verdicts and flags)."""
    was_training = model.training
    model.eval()
    c1, c2, a1, a2 = [], [], [], []
    flagged = 0
    try:
        for start in range(0, len(problems), batch_size):
            chunk = problems[start : start + batch_size]
            batch = run_episodes(model, tokenizer, task, chunk, max_new_tokens=max_new_tokens, greedy=True)
            c1 += batch.correct_turn1
            c2 += batch.correct_turn2
            a1 += batch.answers_turn1
            a2 += batch.answers_turn2
            flagged += batch.flagged
            if rows is not None:
                rows += [{"problem_id": p.problem_id, "question": p.question, "reference": p.answer,
                          "turn1": batch.first.texts[i], "turn2": batch.second.texts[i],
                          "finished_turn1": batch.first.finished[i], "finished_turn2": batch.second.finished[i],
                          "answer_turn1": batch.answers_turn1[i], "answer_turn2": batch.answers_turn2[i],
                          "correct_turn1": batch.correct_turn1[i], "correct_turn2": batch.correct_turn2[i],
                          "flags_turn1": list(batch.flags_turn1[i]), "flags_turn2": list(batch.flags_turn2[i])}
                         for i, p in enumerate(batch.problems)]
    finally:
        model.train(was_training)
    return {**self_correction_metrics(c1, c2, a1, a2), FLAGS: float(flagged)}
