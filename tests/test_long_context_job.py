"""The needle sweep as a Ray job on a tiny llama saved to disk: bad input refused before Ray starts, cells run
over Ray workers into per-cell files, a rerun resumes (only missing cells run, with identical answers), the
report and the MLflow run are written; the presets and `armillary submit` carry the same command."""

import json
import shlex

import pytest
import torch

from armillary.core.model_source import resolve_model
from armillary.algorithms.long_context import job
from armillary.platform import presets


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from armillary.algorithms.long_context import engine

    source = resolve_model("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=512))
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def args_for(model, out, *extra):
    return ["--model", str(model), "--tasks", "single,absent", "--haystacks", "noise", "--lengths", "200",
            "--depths", "2", "--draws", "1", "--out", str(out), *extra]


def test_bad_input_is_refused_before_ray_starts(tiny_model_dir, tmp_path, capsys):
    import ray

    cases = [
        (["--model", str(tmp_path / "nothing-here")], "no model folder"),
        (["--lengths", "1000"], "exceed .* context window of 512 tokens.*--rope-scaling"),
        (["--haystacks", f"file:{tmp_path / 'empty.txt'}"], "no file at"),
        (["--tasks", "single,needles"], "--tasks"),
        (["--tasks", "multi-key", "--needles", "1"], "--needles"),
        (["--rope-scaling", "linear:0.5"], "--rope-scaling"),
    ]
    for extra, message in cases:
        argv = args_for(tiny_model_dir, tmp_path / "out") + extra
        assert job.main(argv) == 2
        assert __import__("re").search(message, capsys.readouterr().err), (extra, message)
    (tmp_path / "empty.txt").write_text("")
    assert job.main(args_for(tiny_model_dir, tmp_path / "out", "--haystacks", f"file:{tmp_path / 'empty.txt'}")) == 2
    assert "no paragraph of prose" in capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "out").exists()


def test_rope_scaling_extends_the_window_explicitly(tiny_model_dir, tmp_path):
    args = job.parse_args(args_for(tiny_model_dir, tmp_path, "--lengths", "1000", "--rope-scaling", "linear:4"))
    settings, prompts, _, _ = job.prepare(args)
    assert settings["window"] == 2048 and all(len(p.ids) == 1000 for p in prompts.values())


def test_the_plan_batches_the_draws_of_each_depth_and_runs_every_cell_once(tiny_model_dir, tmp_path):
    args = job.parse_args(args_for(tiny_model_dir, tmp_path, "--tasks", "single,multi-key,absent", "--lengths", "200,300",
                                   "--depths", "3", "--draws", "5"))
    settings, prompts, haystacks, _ = job.prepare(args)
    for workers, batch_size in ((1, 8), (2, 2)):
        plan = job.group_plan(list(prompts), prompts, settings["head_tokens"], haystacks, workers, True, batch_size)
        batches = [batch for items in plan for batch, _, _ in items]
        assert sorted(cell.key for batch in batches for cell in batch) == sorted(cell.key for cell in prompts)
        for batch in batches:
            assert len(batch) <= batch_size
            assert len({(cell.length, cell.haystack, cell.depth_index, cell.task) for cell in batch}) == 1
            assert len({len(prompts[cell].ids) for cell in batch}) == 1
        # 2 lengths × (3 depths × 2 tasks + absent) groups of 5 draws: one batch each, or 3 batches of ≤ 2
        assert len(batches) == 2 * 7 * (1 if batch_size == 8 else 3)
        assert all(items for items in plan)  # both workers get work


@pytest.mark.ray
@pytest.mark.slow  # two Ray workers each loading a model, a sweep, a resume: minutes on 2 cores
def test_sweep_runs_on_ray_workers_and_resumes_from_its_cell_files(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = args_for(tiny_model_dir, out, "--workers", "2", "--mlflow-uri", uri, "--max-new-tokens", "6",
                    "--draws", "2")
    assert job.main(argv) == 0
    cells = sorted((out / "cells").glob("*.json"))
    assert [c.stem for c in cells] == [f"{cell}__s{draw}" for cell in ("absent__noise__L200__none",
                                       "single__noise__L200__d00of2", "single__noise__L200__d01of2") for draw in (0, 1)]
    first = {c.stem: json.loads(c.read_text()) for c in cells}
    for row in first.values():
        assert row["prompt_tokens"] == 200 and len(row["output_ids"]) <= 6 and row["recall"] in (0.0, 1.0)
        assert row["batch_cells"] == 2  # the two draws of a depth answered together
    assert (out / "heatmap_single__noise.png").stat().st_size > 1000
    assert "| 200 |" in (out / "recall.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert "long_context/single/noise/recall_L200" in summary["metrics"]
    run_id = json.loads((out / "mlflow_run.json").read_text())["run_id"]

    # Resume: a finished run starts nothing; a lost cell is the only one recomputed, to the same answer.
    capsys.readouterr()
    assert job.main(argv) == 0
    assert "6 already done, 0 to run" in capsys.readouterr().out
    cells[2].unlink()
    assert job.main(argv) == 0
    assert "5 already done, 1 to run" in capsys.readouterr().out
    again = json.loads(cells[2].read_text())  # now answered alone: a batch's rows do not depend on each other
    assert again["output_ids"] == first[cells[2].stem]["output_ids"] and again["batch_cells"] == 1
    assert json.loads((out / "mlflow_run.json").read_text())["run_id"] == run_id

    from mlflow.tracking import MlflowClient

    run = MlflowClient(uri).get_run(run_id)
    assert run.data.params["model"] == str(tiny_model_dir) and "long_context/single/noise/recall_L200" in run.data.metrics
    artifacts = {a.path for a in MlflowClient(uri).list_artifacts(run_id)}
    assert {"cells.json", "recall.md", "heatmap_single__noise.png"} <= artifacts

    # A rerun into the same folder with other settings is refused.
    assert job.main(args_for(tiny_model_dir, out, "--seed", "1", "--no-mlflow")) == 2


def test_presets_run_the_job_and_submit_sends_the_same_command():
    from armillary.platform.submit import job_entrypoint

    for name in ("long-context/smollm2-niah", "long-context/smollm2-multi-needle"):
        preset = presets.get(name)
        assert preset.job == "armillary.algorithms.long_context.job"
        parsed = job.parse_args(preset.job_argv())
        job.check_args(parsed)
        smoke = job.parse_args(preset.job_argv(smoke=True))
        assert smoke.out.startswith("runs/") and max(job.check_args(smoke)["lengths"]) <= 256
        command = job_entrypoint(preset.job, preset.job_argv(["workers=4"]))  # run by the head's Ray interpreter
        assert command.endswith('exec "$PY" ' + shlex.join(["-m", preset.job, *preset.job_argv(["workers=4"])]))
        assert shlex.split(command)[-2:] == ["--workers", "4"]
    niah = job.parse_args(presets.get("long-context/smollm2-niah").job_argv())
    settings = job.check_args(niah)
    assert settings["lengths"][0] <= 1024 and settings["lengths"][-1] >= 8000 and niah.depths >= 10 and niah.draws >= 3
