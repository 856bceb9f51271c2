"""VLM reward: the equations on hand-checkable embeddings, the CLIP loss, models saved and loaded in the
standard format, input validation, and a tiny fine-tuning run that learns. No Ray."""

import json
import math

import numpy as np
import pytest
import torch

from armillary.algorithms.clip_reward.model_settings import FinetuneConfig, RewardConfig
from armillary.algorithms.clip_reward.losses import grouped_clip_loss
from armillary.algorithms.clip_reward.models import (
    MODEL_SIZES,
    build_clip,
    build_tokenizer,
    load_clip,
    preprocess_frames,
)
from armillary.algorithms.clip_reward.reward import (
    ClipReward,
    RewardInputError,
    RewardRequest,
    goal_probabilities,
    thresholded_reward,
)
from armillary.envs.language_goals import FLOOR_CAPTION, LanguageGoalOptions, World, success_triples

torch.set_num_threads(1)
WORLD = World(LanguageGoalOptions())


# --- the equations ----------------------------------------------------------------------------------------


def test_goal_probabilities_by_hand():
    # Unit image along e0; texts at cosines 1, 0, -1 (norms differ on purpose: they are normalised away).
    image = torch.tensor([[2.0, 0.0]])
    texts = torch.tensor([[3.0, 0.0], [0.0, 0.5], [-1.0, 0.0]])
    p = goal_probabilities(image, texts, temperature=0.5)
    logits = torch.tensor([2.0, 0.0, -2.0])  # cosines / τ
    expected = logits.exp() / logits.exp().sum()
    assert torch.allclose(p[0], expected)
    assert math.isclose(float(p[0, 0]), math.e**2 / (math.e**2 + 1 + math.e**-2), rel_tol=1e-6)


def test_temperature_sharpens_and_flattens():
    image, texts = torch.tensor([[1.0, 0.2]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sharp, flat = goal_probabilities(image, texts, 0.01), goal_probabilities(image, texts, 100.0)
    assert sharp[0, 0] > 0.999
    assert torch.allclose(flat[0], torch.tensor([0.5, 0.5]), atol=1e-2)
    with pytest.raises(ValueError, match="temperature"):
        goal_probabilities(image, texts, 0.0)


def test_thresholded_reward_fires_strictly_above_beta():
    probabilities = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
    reward, p_goal = thresholded_reward(probabilities, torch.tensor([0, 0, 0]), threshold=0.5)
    assert reward.tolist() == [1.0, 0.0, 0.0]  # 0.5 is not > 0.5
    assert torch.allclose(p_goal, torch.tensor([0.7, 0.5, 0.2]))
    reward, _ = thresholded_reward(probabilities, torch.tensor([1, 1, 1]), threshold=0.25)
    assert reward.tolist() == [1.0, 1.0, 1.0]


def test_grouped_clip_loss_is_the_clip_loss_when_captions_are_distinct():
    torch.manual_seed(0)
    images, texts, scale = torch.randn(6, 8), torch.randn(6, 8), torch.tensor(math.log(10.0))
    ours = grouped_clip_loss(images, texts, torch.arange(6), scale)
    normalize = torch.nn.functional.normalize
    logits = scale.exp() * normalize(images, dim=-1) @ normalize(texts, dim=-1).T
    cross_entropy = torch.nn.functional.cross_entropy
    standard = (cross_entropy(logits, torch.arange(6)) + cross_entropy(logits.T, torch.arange(6))) / 2  # Radford et al.
    assert torch.allclose(ours, standard, atol=1e-6)


def test_grouped_clip_loss_does_not_push_apart_frames_with_the_same_caption():
    # Two images share caption 0 and match it perfectly: the loss must be lower than if they had two
    # different captions that were identical vectors (the standard loss's false negative).
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scale = torch.tensor(math.log(20.0))
    grouped = grouped_clip_loss(images, texts, torch.tensor([0, 0, 1]), scale)
    duplicated = grouped_clip_loss(images, texts[[0, 0, 1]], torch.arange(3), scale)
    assert grouped < duplicated
    # image→text part is ~0; text→image for caption 0 is CE against uniform {0, 1}: log 2.
    assert math.isclose(float(grouped), (0 + (math.log(2) + 0) / 2) / 2, abs_tol=1e-3)
    with pytest.raises(ValueError, match="caption_index"):
        grouped_clip_loss(images, texts, torch.tensor([0, 1]), scale)


# --- models: build, save, load ----------------------------------------------------------------------------


def test_sizes_grow():
    counts = [size.num_parameters(48, 16, 32) for size in MODEL_SIZES.values()]
    assert counts == sorted(counts) and len(counts) >= 3


def test_tokenizer_wraps_texts_and_pools_at_eos():
    tokenizer = build_tokenizer(WORLD.vocabulary())
    ids = tokenizer(["the agent is on the red square", "The agent is on the SPACESHIP"])["input_ids"]
    assert ids[0][0] == tokenizer.bos_token_id and ids[0][-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id != 2  # transformers' CLIP would pool at argmax(ids) instead
    assert tokenizer.unk_token_id in ids[1] and tokenizer.convert_ids_to_tokens(ids[1][1]) == "the"  # lower-cased
    with pytest.raises(ValueError, match="empty"):
        build_tokenizer([])


def test_save_load_round_trip_uses_the_standard_loaders(tiny_clip_model):
    from transformers import AutoTokenizer, CLIPModel

    names = {p.name for p in tiny_clip_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= names
    bundle = load_clip(tiny_clip_model)
    assert isinstance(bundle.model, CLIPModel) and bundle.image_size == 48
    assert AutoTokenizer.from_pretrained(tiny_clip_model)("the red square")["input_ids"] == bundle.tokenizer("the red square")["input_ids"]
    # Same weights, same embeddings as the in-memory model.
    tokenizer = build_tokenizer(WORLD.vocabulary())
    original = build_clip("tiny", 48, 16, len(tokenizer), seed=0).eval()
    frames, _, _ = success_triples(4, seed=0)
    pixels = preprocess_frames(frames, 48)
    with torch.inference_mode():
        expected = original.get_image_features(pixel_values=pixels).pooler_output
    assert torch.allclose(bundle.embed_images(frames), expected, atol=1e-5)
    assert bundle.embed_texts(WORLD.goals[:3]).shape == (3, MODEL_SIZES["tiny"].projection)


def test_load_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_clip(tmp_path)


def test_preprocess_validates_and_normalises():
    frames = np.full((2, 48, 48, 3), 255, dtype=np.uint8)
    pixels = preprocess_frames(frames, 48, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert pixels.shape == (2, 3, 48, 48) and torch.allclose(pixels, torch.ones(()))
    assert preprocess_frames(frames, 24, resize=True).shape == (2, 3, 24, 24)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(frames.astype(np.float32), 48)
    with pytest.raises(ValueError, match=r"\(24, 24\)"):
        preprocess_frames(frames, 24)
    with pytest.raises(ValueError, match="batch, height, width, 3"):
        preprocess_frames(frames[..., :2], 48)


# --- the reward model on a real (untrained) model ---------------------------------------------------------


@pytest.fixture(scope="module")
def reward_model(tiny_clip_model):
    return ClipReward(load_clip(tiny_clip_model), RewardConfig(extra_negatives=(FLOOR_CAPTION,)))


def test_reward_shapes_values_and_cached_text(reward_model):
    frames, goals, _ = success_triples(5, seed=2)
    out = reward_model(frames, goals, WORLD.goals)
    assert out.reward.shape == out.probability.shape == (5,) and out.reward.dtype == np.float32
    assert set(out.reward.tolist()) <= {0.0, 1.0}
    assert np.array_equal(out.reward, (out.probability > 0.5).astype(np.float32))
    assert out.candidates == (*WORLD.goals, FLOOR_CAPTION)
    misses = reward_model.text_cache_misses
    reward_model(frames[:1], goals[:1], WORLD.goals)
    assert reward_model.text_cache_misses == misses  # same goal set: no new text forward


def test_dense_probability_matches_the_equation(reward_model):
    frames, goals, _ = success_triples(3, seed=3)
    out = reward_model(frames, goals, WORLD.goals)
    bundle = reward_model.bundle
    image = torch.nn.functional.normalize(bundle.embed_images(frames), dim=-1)
    text = torch.nn.functional.normalize(bundle.embed_texts(out.candidates), dim=-1)
    p = torch.softmax(image @ text.T * bundle.logit_scale, dim=-1)
    index = [out.candidates.index(g) for g in goals]
    assert np.allclose(out.probability, p[range(3), index].numpy(), atol=1e-5)


def test_chunked_forward_passes_give_the_same_embeddings(reward_model):
    frames, _, _ = success_triples(7, seed=5)
    chunked = ClipReward(reward_model.bundle, reward_model.config, forward_chunk=3)
    assert torch.allclose(chunked.image_embeddings(frames), reward_model.image_embeddings(frames), atol=1e-5)


def test_batch_of_requests_equals_requests_one_by_one(reward_model):
    frames, goals, _ = success_triples(6, seed=4)
    small_set = tuple(sorted(set(goals)))
    requests = [RewardRequest(frames[:2], goals[:2], WORLD.goals), RewardRequest(frames[2:], goals[2:], small_set)]
    together = reward_model.score_batch(requests)
    for request, result in zip(requests, together):
        alone = reward_model(request.frames, request.goals, request.goal_set)
        assert np.allclose(alone.probability, result.probability, atol=1e-5)


BAD_REQUESTS = {
    "dtype": (lambda f: f.astype(np.float32), None, None, "uint8"),
    "shape": (lambda f: f[:, :40], None, None, r"\(40, 48\) pixels"),
    "channels": (lambda f: f[..., :1], None, None, r"\[batch, height, width, 3\]"),
    "empty goal set": (None, None, [], "goal_set is empty"),
    "unknown goal": (None, ["the agent is on the moon", "the agent is on the moon"], None, "unknown goal 'the agent is on the moon'"),
    "goal count": (None, ["the agent is on the red square"], None, "2 frames but 1 goals"),
    "not a list": (None, None, "the agent is on the red square", "list of texts"),
    "duplicates": (None, None, ["the agent is on the red square"] * 2, "duplicate"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_input_gets_a_clear_error_and_the_rest_of_the_batch_is_answered(reward_model, case):
    change_frames, goals, goal_set, message = BAD_REQUESTS[case]
    frames, good_goals, _ = success_triples(2, seed=5)
    bad = RewardRequest(
        change_frames(frames) if change_frames else frames,
        good_goals if goals is None else goals,
        WORLD.goals if goal_set is None else goal_set,
    )
    with pytest.raises(RewardInputError, match=message):
        reward_model(bad.frames, bad.goals, bad.goal_set)
    good = RewardRequest(frames, good_goals, WORLD.goals)
    results = reward_model.score_batch([good, bad, good])
    assert isinstance(results[1], RewardInputError)
    assert results[0].reward.shape == results[2].reward.shape == (2,)


def test_single_frame_and_resize():
    frames, goals, _ = success_triples(1, seed=6)
    tokenizer = build_tokenizer(WORLD.vocabulary())
    bundle_model = build_clip("tiny", 32, 16, len(tokenizer), seed=0)
    from armillary.algorithms.clip_reward.models import ClipBundle, CLIP_MEAN, CLIP_STD

    bundle = ClipBundle(bundle_model.eval(), tokenizer, 32, torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD), torch.device("cpu"))
    strict = ClipReward(bundle, RewardConfig())
    with pytest.raises(RewardInputError, match="model takes"):
        strict(frames[0], goals[0], WORLD.goals)
    resized = ClipReward(bundle, RewardConfig(resize_frames=True))
    assert resized(frames[0], goals[0], WORLD.goals).reward.shape == (1,)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="threshold"):
        RewardConfig(threshold=1.5)
    with pytest.raises(ValueError, match="temperature"):
        RewardConfig(temperature=0)
    with pytest.raises(ValueError, match="duplicates"):
        RewardConfig(extra_negatives=("a", "a"))
    with pytest.raises(ValueError, match="warmup_steps"):
        FinetuneConfig(steps=10, warmup_steps=10)
    with pytest.raises(ValueError):
        FinetuneConfig(size="huge")


# --- fine-tuning and evaluation ---------------------------------------------------------------------------


def test_tiny_finetune_lowers_the_loss_and_saves_a_loadable_model(tmp_path):
    from armillary.algorithms.clip_reward.finetune import finetune

    # A small world (4 goals) and one patch per cell, so a few seconds of training leave the plateau where the
    # model only knows caption frequencies (the default 2x2-cell patches take a few hundred steps longer).
    world_options = LanguageGoalOptions(num_colours=2, num_shapes=2, num_objects=2)
    config = FinetuneConfig(size="tiny", patch_size=8, steps=150, warmup_steps=10, batch_size=64, num_train=2000, lr=2e-3)
    record = finetune(config, tmp_path / "model", env_options=world_options, log_every=25, print_fn=lambda *_: None)
    losses = [point["loss"] for point in record["history"]]
    assert losses[-1] < 0.6 * losses[0], losses
    assert record["held_out_caption_accuracy"] > 0.6  # chance: 0.4 (always "floor")
    saved = json.loads((tmp_path / "model" / "training.json").read_text())
    assert saved["config"]["steps"] == 150
    reward = ClipReward(load_clip(tmp_path / "model"), RewardConfig())
    small_world = World(world_options)
    frames, goals, _ = success_triples(3, seed=7, options=world_options)
    assert reward(frames, goals, small_world.goals).probability.shape == (3,)


def test_precision_recall_and_pr_auc_by_hand():
    from armillary.algorithms.clip_reward.evaluate import average_precision, precision_recall_curve, threshold_metrics

    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([True, False, True, False])
    precision, recall, thresholds = precision_recall_curve(scores, labels)
    assert np.allclose(precision, [1, 1 / 2, 2 / 3, 1 / 2]) and np.allclose(recall, [0.5, 0.5, 1, 1])
    assert math.isclose(average_precision(scores, labels), 0.5 * 1 + 0.5 * 2 / 3)
    assert math.isclose(average_precision(np.array([0.5, 0.5]), np.array([True, False])), 0.5)  # ties move together
    metrics = threshold_metrics(scores, labels, threshold=0.75)
    assert metrics["precision"] == 0.5 and metrics["recall"] == 0.5 and metrics["firing_rate"] == 0.5
    with pytest.raises(ValueError, match="no positive"):
        precision_recall_curve(scores, np.zeros(4, dtype=bool))


def test_eval_job_writes_plot_results_and_mlflow(tiny_clip_model, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from armillary.algorithms.clip_reward.evaluate import EXPERIMENT, main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("ARMILLARY_RUNS_DIR", str(tmp_path / "runs"))
    assert main([f"tiny={tiny_clip_model}", "--num", "200", "--out", str(tmp_path / "eval"), "--mlflow-uri", uri]) == 0
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 1000
    results = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]
    assert 0 <= results["tiny"]["pr_auc"] <= 1
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and any("clip_reward/pr_auc" in run.data.metrics for run in runs)
    parent = next(run for run in runs if run.data.tags.get("armillary.kind") == "clip-eval")
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"pr_curves.png", "results.json"}


def test_seeds_of_a_size_are_summarised_together():
    from armillary.algorithms.clip_reward.evaluate import summarise_by_group

    def result(auc):
        return {"num_parameters": 10, "pr_auc": auc, "precision": 1.0, "recall": 0.5, "f1": 0.6, "firing_rate": 0.3}

    summary = summarise_by_group({"tiny-seed0": result(0.8), "tiny-seed1": result(0.9), "small": result(0.95)})
    assert summary["tiny"]["seeds"] == 2 and math.isclose(summary["tiny"]["pr_auc"], 0.85)
    assert (summary["tiny"]["pr_auc_min"], summary["tiny"]["pr_auc_max"]) == (0.8, 0.9)
    assert summary["small"]["seeds"] == 1


def test_model_side_and_jobs_do_not_import_ray():
    import subprocess
    import sys

    code = ("import sys; import armillary.algorithms.clip_reward.reward, armillary.algorithms.clip_reward.finetune, "
            "armillary.algorithms.clip_reward.evaluate; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
