"""ScoreEnvRunner: RLlib's EnvRunner for two-turn LM episodes.

RLlib's gym runners step one action per env per forward pass; an LM "action" is a whole response of many tokens,
and sampling is only fast when the whole batch of prompts is generated at once with a KV cache. So this runner
keeps RLlib's EnvRunner contract (built by the EnvRunnerGroup, local or as remote actors; weights pushed by
`sync_weights`; counters checkpointed) and samples with rollout.run_episodes instead of a gym loop. The task
(problems + oracle verifier r̂) is built from the spec's `env` section (task_env.py).

`sample` returns plain numpy columns, problem-major (rows [i·k, (i+1)·k) share a problem), ready for the learner.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.env import INPUT_ENV_SPACES
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, WEIGHTS_SEQ_NO

from armillary.algorithms.score.chat import for_tokenizer
from armillary.algorithms.score.run_settings import score_run
from armillary.algorithms.score.module import turn_columns
from armillary.algorithms.score.rollout import evaluate_greedy, run_episodes
from armillary.algorithms.score.task_env import build_task_from_env, text_spaces
from armillary.algorithms.score.tasks import is_generated, problems_for_iteration


class ScoreEnvRunner(EnvRunner, Checkpointable):
    def __init__(self, *, config, **kwargs):
        super().__init__(config=config, **kwargs)
        self.run = score_run(self.config)
        self.task = build_task_from_env(self.run.env_name, self.run.env_options)
        module_spec = self.config.get_rl_module_spec(spaces=self.get_spaces(), inference_only=True)
        # Generation is most of a SCoRe iteration: sample on a GPU when this process sees one (the driver's local
        # runner next to a GPU learner, or a remote runner given num_gpus_per_env_runner; Ray hides GPUs from
        # actors that did not ask for one).
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.module = module_spec.build().to(self.device)
        self.module.eval()
        # What the model sees and what judges it: the task as a conversation in the model's chat template where its
        # tokenizer has one (an instruct model), else the task's raw text (chat.for_tokenizer).
        self.episode_task = for_tokenizer(self.task, self.module.tokenizer)
        self._weights_seq_no = 0
        # Sampling randomness of this runner: its own stream, seeded from the trial seed and the runner index, on
        # the sampling device (torch.multinomial needs a generator on the device of its input).
        self._generator = torch.Generator(device=self.device).manual_seed(int(self._seed or 0) * 7919 + 1)

    # ---- the EnvRunner contract -------------------------------------------------------------------------------
    def assert_healthy(self):
        assert self.module is not None and self.task is not None, "ScoreEnvRunner was not fully built"

    def get_spaces(self):
        spaces = text_spaces()
        return {INPUT_ENV_SPACES: spaces, DEFAULT_MODULE_ID: spaces}

    def sample(self, *, num_problems: int, iteration: int, pair_sft: bool = False, **kwargs) -> dict[str, np.ndarray]:
        """Two-turn episodes for `num_problems` training problems × group_size samples, at the training temperature.
        With `pair_sft`, the turn-2 columns hold Pair-SFT's pairs instead (EpisodeBatch.pair_sft_turn2) and
        `sft_kept` marks the rows that have one; the metrics stay those of the sampled episodes."""
        run, hp = self.run, self.run.hp
        problems = problems_for_iteration(self.task, run.train_split, num_problems, run.seed * 1000 + (self.worker_index or 0),
                                          iteration)
        batch = run_episodes(self.module.lm, self.module.tokenizer, self.episode_task, problems, group_size=hp.group_size,
                             max_new_tokens=hp.max_new_tokens, temperature=hp.temperature, generator=self._generator)
        self.num_env_steps_sampled_lifetime += 2 * len(batch.problems)  # one step per turn
        turn1, turn2 = batch.tensors(self.module.tokenizer)
        columns: dict[str, np.ndarray] = {}
        if pair_sft:
            turn2, kept = batch.pair_sft_turn2(self.module.tokenizer)
            columns["sft_kept"] = kept.numpy()
        for name, turn in (("turn1", turn1), ("turn2", turn2)):
            ids, attention, response = turn_columns(name)
            columns[ids] = turn.input_ids.numpy()
            columns[attention] = turn.attention_mask.numpy()
            columns[response] = turn.response_mask.numpy()
        columns["correct_turn1"] = np.asarray(batch.correct_turn1, dtype=np.float32)
        columns["correct_turn2"] = np.asarray(batch.correct_turn2, dtype=np.float32)
        self._last_metrics = batch.metrics()
        return columns

    def evaluate(self, *, num_problems: int) -> dict[str, float]:
        """Greedy two-turn metrics on the first `num_problems` held-out problems (the same ones every time)."""
        split = self.run.eval_split
        problems = self.task.problems(split, num_problems) if is_generated(self.task) else \
            self.task.problems(split, None)[:num_problems]
        return evaluate_greedy(self.module.lm, self.module.tokenizer, self.episode_task, problems,
                               max_new_tokens=self.run.hp.max_new_tokens)

    def get_metrics(self) -> dict[str, float]:
        """The self-correction figures of the last sampled batch (sampled at temperature, not greedy)."""
        return dict(getattr(self, "_last_metrics", {}))

    # ---- checkpointing and weight sync --------------------------------------------------------------------------
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        state: dict[str, Any] = {NUM_ENV_STEPS_SAMPLED_LIFETIME: self.num_env_steps_sampled_lifetime,
                                 "generator": self._generator.get_state().numpy(), "generator_device": self.device.type}
        if self._check_component(COMPONENT_RL_MODULE, components, not_components):
            state[COMPONENT_RL_MODULE] = self.module.get_state(**kwargs)
            state[WEIGHTS_SEQ_NO] = self._weights_seq_no
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        if COMPONENT_RL_MODULE in state:
            seq_no = state.get(WEIGHTS_SEQ_NO, 0)
            if seq_no == 0 or self._weights_seq_no < seq_no:
                module_state = state[COMPONENT_RL_MODULE]
                if isinstance(module_state, ray.ObjectRef):  # remote runners get the weights through the object store
                    module_state = ray.get(module_state)
                if isinstance(module_state, dict) and DEFAULT_MODULE_ID in module_state:
                    module_state = module_state[DEFAULT_MODULE_ID]
                self.module.set_state(module_state)
            if seq_no > 0:
                self._weights_seq_no = seq_no
        if NUM_ENV_STEPS_SAMPLED_LIFETIME in state:
            self.num_env_steps_sampled_lifetime = state[NUM_ENV_STEPS_SAMPLED_LIFETIME]
        # A CPU and a CUDA generator have different states: a run resumed on the other kind of machine keeps this
        # runner's seeded stream instead (its samples then differ from the uninterrupted run's; nothing else does).
        if "generator" in state and state.get("generator_device", "cpu") == self.device.type:
            self._generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))

    def get_ctor_args_and_kwargs(self):
        return (), {"config": self.config}

    def get_checkpointable_components(self):
        return []  # the weights are checkpointed by the learner group; this runner keeps only counters and its RNG
