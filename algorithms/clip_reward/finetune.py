"""Fine-tune a CLIP model contrastively on rendered (frame, caption) pairs of the language-goal world.

    python -m armillary.algorithms.clip_reward.finetune --size small --out runs/clip_reward/models/small

The paper fine-tuned its CLIP models on domain data; no pretrained weights can be downloaded here, so by
default the model is built at the env's frame size from a CLIPConfig (`--size`, see
algorithms/clip_reward/models.py) and trained from scratch. `--init-from PATH_OR_HUB_NAME` fine-tunes an
existing checkpoint instead (frames are then resized to its input size). The result is saved in the
standard format (save_pretrained), with training.json beside it: the config, the loss curve, the wall time,
and caption-retrieval accuracy on held-out frames. The same go to MLflow (experiment `clip-reward/fit` of
$MLFLOW_TRACKING_URI, else the embedded store runs/mlflow.db): the config as params, the loss, 1/τ and learning
rate per logged step, the held-out accuracy, and training.json as an artifact.

CPU-friendly: one torch thread unless --threads says otherwise (the dev machine has 2 shared cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from armillary.algorithms.clip_reward.model_settings import FinetuneConfig
from armillary.algorithms.clip_reward.losses import grouped_clip_loss
from armillary.algorithms.clip_reward.models import (
    CLIP_MEAN,
    CLIP_STD,
    build_clip,
    build_tokenizer,
    load_clip,
    preprocess_frames,
    save_clip,
)
from armillary.envs.language_goals import LanguageGoalOptions, World, caption_pairs
from armillary.core.mlflow_store import client as mlflow_client
from armillary.core.mlflow_store import default_tracking_uri, ensure_experiment

EXPERIMENT = "clip-reward/fit"

HELD_OUT_SEED_OFFSET = 1_000_003  # held-out frames never share a seed with training frames


def finetune(
    config: FinetuneConfig,
    out: str | Path,
    env_options: LanguageGoalOptions | None = None,
    init_from: str | None = None,
    log_every: int = 50,
    print_fn=print,
) -> dict[str, Any]:
    """Train, save to `out`, and return the record written to out/training.json."""
    torch.set_num_threads(config.threads)
    env_options = env_options or LanguageGoalOptions()
    world = World(env_options)
    frames, captions = caption_pairs(config.num_train, config.seed, env_options, config.on_object_fraction)
    caption_list = world.captions
    caption_index = np.array([caption_list.index(c) for c in captions])

    if init_from:
        bundle = load_clip(init_from)
        model, tokenizer = bundle.model, bundle.tokenizer
        image_size, mean, std, resize = bundle.image_size, bundle.mean, bundle.std, True
    else:
        tokenizer = build_tokenizer(world.vocabulary())
        model = build_clip(config.size, world.frame_shape[0], config.patch_size, len(tokenizer), seed=config.seed)
        image_size, mean, std, resize = world.frame_shape[0], CLIP_MEAN, CLIP_STD, False
    model.train()
    tokens = tokenizer(list(caption_list), padding=True, return_tensors="pt")

    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: _lr_factor(step, config))
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(config.steps):
        batch = rng.choice(config.num_train, size=config.batch_size, replace=False)
        present, local_index = np.unique(caption_index[batch], return_inverse=True)
        pixels = preprocess_frames(frames[batch], image_size, mean, std, resize=resize)
        image_embeds = model.get_image_features(pixel_values=pixels).pooler_output
        text_embeds = model.get_text_features(
            input_ids=tokens["input_ids"][present], attention_mask=tokens["attention_mask"][present]
        ).pooler_output
        loss = grouped_clip_loss(image_embeds, text_embeds, torch.as_tensor(local_index), model.logit_scale)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():  # as in CLIP: the learned 1/τ is capped at 100
            model.logit_scale.clamp_(0, math.log(100))
        if step % log_every == 0 or step == config.steps - 1:
            history.append({"step": step, "loss": loss.item(), "lr": schedule.get_last_lr()[0],
                            "logit_scale": model.logit_scale.detach().exp().item()})
            print_fn(f"step {step:5d}  loss {loss.item():.4f}  1/τ {history[-1]['logit_scale']:.1f}")
    elapsed = time.perf_counter() - start

    model.eval()
    path = save_clip(model, tokenizer, out)
    accuracy = retrieval_accuracy(path, env_options, seed=config.seed + HELD_OUT_SEED_OFFSET)
    record = {
        "config": config.model_dump(),
        "env_options": env_options.model_dump(),
        "init_from": init_from,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": elapsed,
        "history": history,
        "held_out_caption_accuracy": accuracy,
    }
    (path / "training.json").write_text(json.dumps(record, indent=2))
    print_fn(f"saved {path}  ({record['num_parameters']:,} parameters, {elapsed:.0f} s, held-out caption accuracy {accuracy:.3f})")
    return record


def retrieval_accuracy(model_path: str | Path, env_options: LanguageGoalOptions, seed: int, num: int = 1000) -> float:
    """Share of held-out frames whose most similar caption (of all the world's captions) is the right one."""
    bundle = load_clip(model_path)
    world = World(env_options)
    frames, captions = caption_pairs(num, seed, env_options)
    texts = torch.nn.functional.normalize(bundle.embed_texts(world.captions), dim=-1)
    images = torch.nn.functional.normalize(torch.cat([bundle.embed_images(f, resize=True) for f in np.array_split(frames, 4)]), dim=-1)
    predicted = (images @ texts.T).argmax(1).numpy()
    truth = np.array([world.captions.index(c) for c in captions])
    return float((predicted == truth).mean())


def _lr_factor(step: int, config: FinetuneConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def log_to_mlflow(uri: str, runs_root: Path, record: dict[str, Any], path: Path) -> str:
    """One run per fine-tuned model: config as params, the curves as metrics, training.json as an artifact."""
    client = mlflow_client(uri)
    experiment_id = ensure_experiment(uri, EXPERIMENT, runs_root)
    run_id = client.create_run(experiment_id, run_name=path.name, tags={"armillary.kind": "clip-fit"}).info.run_id
    for key, value in {**record["config"], "init_from": record["init_from"], "model_path": str(path),
                       "num_parameters": record["num_parameters"]}.items():
        client.log_param(run_id, key, str(value))
    for point in record["history"]:
        for name in ("loss", "logit_scale", "lr"):
            client.log_metric(run_id, f"clip_reward/fit/{name}", point[name], step=point["step"])
    client.log_metric(run_id, "clip_reward/fit/held_out_caption_accuracy", record["held_out_caption_accuracy"])
    client.log_metric(run_id, "clip_reward/fit/train_seconds", record["train_seconds"])
    client.log_artifact(run_id, str(path / "training.json"))
    client.set_terminated(run_id)
    return run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to save the model in")
    parser.add_argument("--init-from", default=None, help="a saved model folder or hub name to start from")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else runs/mlflow.db")
    parser.add_argument("--no-mlflow", action="store_true")
    for name, field in FinetuneConfig.model_fields.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=f"{field.description} (default {field.default})")
    args = vars(parser.parse_args(argv))
    out, init_from = args.pop("out"), args.pop("init_from")
    mlflow_uri, no_mlflow = args.pop("mlflow_uri"), args.pop("no_mlflow")
    try:
        config = FinetuneConfig.model_validate({k: v for k, v in args.items() if v is not None})
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    record = finetune(config, out, init_from=init_from)
    if not no_mlflow:
        runs_root = Path(os.environ.get("ARMILLARY_RUNS_DIR", "runs")).resolve()
        uri = mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(runs_root)
        run_id = log_to_mlflow(uri, runs_root, record, Path(out))
        print(f"MLflow: experiment {EXPERIMENT!r}, run {run_id} in {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
