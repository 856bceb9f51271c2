"""The tiny SCoRe policy: standard transformers save/load, the character tokenizer, KV-cached sampling,
greedy determinism and the two-turn episode tensors (no Ray, a random tiny model)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from armillary.algorithms.score import losses
from armillary.algorithms.score.model import (TinyModelConfig, build_char_tokenizer, build_tiny_model, count_parameters,
                                              load_policy, save_policy)
from armillary.algorithms.score.rollout import evaluate_greedy, generate, run_episodes
from armillary.algorithms.score.tasks import Verdict
from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask

SMALL = TinyModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, max_positions=512)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tokenizer = build_char_tokenizer()
    model = build_tiny_model(SMALL, tokenizer, seed=0)
    path = save_policy(model, tokenizer, tmp_path_factory.mktemp("tiny"))
    return model, tokenizer, path


def test_default_tiny_model_is_about_a_million_parameters():
    assert 5e5 < count_parameters(build_tiny_model()) < 2e6


def test_save_load_round_trip_gives_identical_logits(saved):
    model, tokenizer, path = saved
    loaded, loaded_tokenizer = load_policy(path)
    text = ["Q: 347+586\nA: 7+6+0=13;#933"]
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert torch.equal(ids, loaded_tokenizer(text, return_tensors="pt")["input_ids"])
    model.eval(), loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_the_standard_auto_classes_load_it(saved):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, _, path = saved
    assert AutoModelForCausalLM.from_pretrained(path).config.model_type == "llama"
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = "Q: 12+34\nA: 2+4+0=06;1+3+0=04;#46"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and len(ids) == len(text) + 1  # one token per character
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_load_policy_names_a_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_policy(tmp_path)


def test_greedy_is_deterministic_and_matches_a_full_forward(saved):
    model, tokenizer, _ = saved
    model.eval()
    prompts = ["Q: 12+34\nA: ", "Q: 9999+1\nA: ", "Q: 5+5\nA: "]  # different lengths: left padding is exercised
    first = generate(model, tokenizer, prompts, max_new_tokens=12, greedy=True)
    second = generate(model, tokenizer, prompts, max_new_tokens=12, greedy=True)
    assert first == second
    # The KV-cached tokens are the argmax of an uncached forward pass over prompt + response, row by row.
    for prompt, response in zip(prompts, first.token_ids):
        ids = torch.tensor([tokenizer(prompt)["input_ids"] + response])
        with torch.no_grad():
            logits = model(ids).logits[0]
        start = ids.shape[1] - len(response)
        assert logits[start - 1 : -1].argmax(-1).tolist() == response


def test_sampling_is_reproducible_with_a_generator(saved):
    model, tokenizer, _ = saved
    prompts = ["Q: 1+2\nA: "] * 4
    a = generate(model, tokenizer, prompts, max_new_tokens=8, generator=torch.Generator().manual_seed(3))
    b = generate(model, tokenizer, prompts, max_new_tokens=8, generator=torch.Generator().manual_seed(3))
    assert a == b
    assert all(len(ids) <= 8 for ids in a.token_ids)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, prompts, max_new_tokens=8, temperature=0.0)


def _sampled_episodes(saved, num_problems: int, group_size: int, max_new_tokens: int):
    """Two-turn episodes of the saved tiny model on 2–3 digit training problems (seed 0)."""
    model, tokenizer, _ = saved
    task = ArithmeticTask(min_digits=2, max_digits=3)
    problems = task.problems("train", num_problems)
    batch = run_episodes(model, tokenizer, task, problems, group_size=group_size, max_new_tokens=max_new_tokens,
                         generator=torch.Generator().manual_seed(0))
    return model, tokenizer, task, problems, batch


def test_two_turn_episode_shapes_and_learner_tensors(saved):
    model, tokenizer, task, _, batch = _sampled_episodes(saved, num_problems=3, group_size=2, max_new_tokens=10)
    assert len(batch.problems) == 6 and batch.problems[0] == batch.problems[1] != batch.problems[2]
    assert len(batch.correct_turn1) == len(batch.correct_turn2) == 6
    for prompt, problem, y1 in zip(batch.second_prompts, batch.problems, batch.first.texts):
        assert prompt.startswith(task.first_turn_prompt(problem)) and task.instruction in prompt and y1.strip() in prompt
    turn1, turn2 = batch.tensors(tokenizer)
    for turn, generation in ((turn1, batch.first), (turn2, batch.second)):
        assert turn.input_ids.shape == turn.response_mask.shape == turn.attention_mask.shape
        assert turn.response_mask.sum(-1).tolist() == [len(ids) for ids in generation.token_ids]
        for row, ids in zip(range(6), generation.token_ids):
            assert turn.input_ids[row][turn.response_mask[row].bool()].tolist() == ids
    # The learner's log-probs on these tensors are finite and zero outside the responses.
    logits = model(input_ids=turn2.input_ids, attention_mask=turn2.attention_mask).logits
    logp = losses.response_log_probs(logits, turn2.input_ids, turn2.response_mask)
    assert torch.isfinite(logp).all() and (logp[turn2.response_mask == 0] == 0).all()
    assert set(batch.metrics()) >= {"score/acc_t1", "score/acc_t2", "score/change_rate"}


def test_flagged_responses_are_counted_per_batch_and_in_evaluation(saved):
    """`score/verifier_flags` counts the responses (of both turns) whose verdict carries a flag."""
    model, tokenizer, _ = saved

    @dataclasses.dataclass
    class FlagsOddProblems(ArithmeticTask):
        def verify(self, problem, response):
            odd = problem.metadata["a"] % 2 == 1
            return Verdict(False, ("hedged",) if odd else (), "")

    task = FlagsOddProblems(min_digits=2, max_digits=2)
    problems = task.problems("train", 6)
    odd = sum(p.metadata["a"] % 2 for p in problems)
    assert 0 < odd < 6
    batch = run_episodes(model, tokenizer, task, problems, group_size=2, max_new_tokens=4,
                         generator=torch.Generator().manual_seed(0))
    assert batch.flagged == 2 * 2 * odd  # two samples per problem, two turns each
    assert batch.metrics()["score/verifier_flags"] == 2 * 2 * odd
    assert batch.correct_turn1 == [False] * 12  # the verdict, not is_correct, decides
    figures = evaluate_greedy(model, tokenizer, task, problems, max_new_tokens=4, batch_size=4)
    assert figures["score/verifier_flags"] == 2 * odd


def test_pair_sft_rows_hold_a_wrong_attempt_in_context_and_a_right_sibling_as_response(saved):
    model, tokenizer, task, problems, batch = _sampled_episodes(saved, num_problems=4, group_size=3, max_new_tokens=14)
    # Make the pairing certain whatever the untrained model wrote: in each group, row 0 right, rows 1-2 wrong.
    right = [task.reference_solution(p) for p in problems]
    texts, ids = list(batch.first.texts), list(batch.first.token_ids)
    for g, solution in enumerate(right):
        texts[3 * g] = solution
        ids[3 * g] = tokenizer(solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    batch = dataclasses.replace(batch, first=dataclasses.replace(batch.first, texts=texts, token_ids=ids),
                                correct_turn1=[i % 3 == 0 for i in range(12)])
    turn2, kept = batch.pair_sft_turn2(tokenizer)
    assert kept.tolist() == [0.0, 1.0, 1.0] * 4
    for row in range(12):
        response = turn2.input_ids[row][turn2.response_mask[row].bool()].tolist()
        context = tokenizer.decode(turn2.input_ids[row][turn2.attention_mask[row].bool() & ~turn2.response_mask[row].bool()],
                                   skip_special_tokens=True)
        assert context == batch.second_prompts[row]  # the row's own (wrong) first attempt stays in the context
        if kept[row]:
            assert response == ids[3 * (row // 3)]  # … and the response is its problem's right attempt
        else:
            assert response == batch.second.token_ids[row]


def test_greedy_evaluation_returns_the_metrics(saved):
    model, tokenizer, _ = saved
    task = ArithmeticTask(min_digits=2, max_digits=2)
    metrics = evaluate_greedy(model, tokenizer, task, task.problems("test", 4), max_new_tokens=6, batch_size=3)
    assert 0.0 <= metrics["score/acc_t1"] <= 1.0 and "score/delta_c_to_i" in metrics


def test_pretrain_job_smoke_saves_a_loadable_model_and_its_metrics(tmp_path):
    import json

    from armillary.algorithms.score import pretrain as score_pretrain

    out = tmp_path / "base"
    assert score_pretrain.main(["--out", str(out), "--max-steps", "2", "--eval-every", "1", "--eval-problems", "3",
                                "--final-eval-problems", "3", "--batch-size", "4", "--turn2-every", "1",
                                "--turn2-batch-size", "2", "--min-digits", "1", "--max-digits", "2"]) == 0
    metrics = json.loads((out / "pretrain_metrics.json").read_text())
    assert metrics["steps"] == 2 and "score/acc_t1" in metrics["held_out_greedy_two_turn"]
    model, tokenizer = load_policy(out)
    assert count_parameters(model) == metrics["parameters"]


def test_score_loss_on_real_episodes_backpropagates_into_the_model(saved):
    model, tokenizer, _ = saved
    task = ArithmeticTask(min_digits=2, max_digits=2)
    batch = run_episodes(model, tokenizer, task, task.problems("train", 2), group_size=2, max_new_tokens=6,
                         generator=torch.Generator().manual_seed(1))
    turn1, turn2 = batch.tensors(tokenizer)
    model.train()
    model.zero_grad()

    def log_probs(turn):
        logits = model(input_ids=turn.input_ids, attention_mask=turn.attention_mask).logits
        return losses.response_log_probs(logits, turn.input_ids, turn.response_mask)

    logp, mask1, mask2 = losses.join_turns(log_probs(turn1), turn1.response_mask, log_probs(turn2), turn2.response_mask)
    # Fake oracle rewards so that the advantages are non-zero; π_ref = a perturbed copy of π_θ's log-probs.
    out = losses.score_loss(logp, logp.detach() - 0.1, mask1, mask2, [1, 0, 0, 1], [1, 1, 0, 0],
                            variant=losses.Variant.STAGE2, group_size=2)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    model.eval()


@pytest.mark.parametrize("env, reason", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "the hub did not confirm it"),  # nothing listens on 9
])
def test_a_hub_name_that_cannot_be_loaded_is_refused_in_bounded_time(env, reason, tmp_path):
    """`mymodels/base`, not a local folder: from_pretrained would retry a hub it cannot reach for ever. check_model (run
    by `prepare` before any trial) refuses it naming the field, from the cache alone when offline."""
    import os
    import subprocess
    import sys

    code = ("from armillary.algorithms.score.config import check_model\n"
            "try:\n    check_model('mymodels/base')\nexcept ValueError as err:\n    print(err)\nelse:\n    print('accepted')")
    run_env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env}  # an empty cache
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("algorithm.config.model: 'mymodels/base' is not a local folder"), out.stdout + out.stderr
    assert reason in out.stdout
