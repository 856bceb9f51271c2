"""Needle-in-a-haystack presets: job presets that run the Ray sweep (algorithms/long_context/job.py).

`armillary run long-context/smollm2-niah` runs the sweep; `key=value` overrides pass `--key value` to the job
(e.g. workers=2 threads=1, lengths=1000,2000); rerunning the same command resumes it. `--smoke` runs the real
code path on a few short cells into its own folder.
"""

from armillary.core.presets import register_job

JOB = "armillary.algorithms.long_context.job"
OUT = "results/long_context"
SMOKE = ["--model", "smollm2", "--haystacks", "noise", "--lengths", "256", "--depths", "2", "--draws", "1",
         "--needles", "2"]

register_job(
    "long-context/smollm2-niah",
    JOB,
    ["--model", "smollm2", "--tasks", "single,absent", "--haystacks", "noise,pyref", "--lengths", "1000,2000,4000,8000",
     "--depths", "10", "--draws", "3", "--out", f"{OUT}/smollm2-niah"],
    "SmolLM2-135M-Instruct, single needle on RULER's noise and Python-reference prose, 1k–8k tokens × 10 depths × "
    "3 draws, plus the needle-absent control; heatmaps and recall tables to the run folder and MLflow.",
    smoke_args=[*SMOKE, "--tasks", "single,absent", "--out", "runs/long_context/smoke-niah"],
)

register_job(
    "long-context/smollm2-multi-needle",
    JOB,
    ["--model", "smollm2", "--tasks", "multi-needle,multi-key,multi-value", "--haystacks", "noise",
     "--lengths", "1000,2000,4000,8000", "--depths", "3", "--draws", "3", "--needles", "4",
     "--out", f"{OUT}/smollm2-multi-needle"],
    "SmolLM2-135M-Instruct with 4 needles: Gemini's multi-needle (recall = fraction retrieved) and RULER's "
    "multi-key and multi-value, noise haystack, 1k–8k tokens × 3 depths of the first needle × 3 draws.",
    smoke_args=[*SMOKE, "--tasks", "multi-needle,multi-key,multi-value", "--out", "runs/long_context/smoke-multi-needle"],
)
