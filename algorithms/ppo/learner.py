"""A lean PPO torch learner: RLlib's PPO loss and update, with the per-minibatch framework work taken out.

RLlib's `Learner.update` wraps every minibatch step in generic machinery: a batch iterator that slices a
`MultiAgentBatch` per minibatch, `module.train()` on every forward (a recursive walk over every submodule),
metrics logged through the `MetricsLogger` per minibatch, a non-finite check on every gradient tensor and a
per-optimizer `isfinite` sweep before each step. On the small networks PPO baselines use, that costs more than
the forward, backward and Adam step together (benchmarks/README.md: ~2.1 ms per minibatch step vs ~1 ms of
torch work). `LeanPPOTorchLearner.update` keeps what defines the algorithm and drops the rest:

  same    the train batch: from the env runner's `Rollout` arrays (algorithms/ppo/rollout.py: one value forward,
          GAE over [T, num_envs], RLlib's row order and standardisation, its learner-connector metrics), checked
          row for row against RLlib's learner connector on the same data cut into episodes, or, for episodes,
          RLlib's learner connector itself (episodes -> batch, GAE, advantage standardisation); the
          PPO loss (`losses.ppo_loss` via `minibatch_loss`, checked against RLlib's `compute_loss_for_module` in tests/test_ppo_lean.py),
          Adam from RLlib's optimizer set-up, global-norm gradient clip with RLlib's coefficient, num_epochs
          shuffled passes of ceil(steps / minibatch_size) full minibatches, lr/entropy schedules, the metrics
          RLlib reports (policy_loss, vf_loss, vf_loss_unclipped, vf_explained_var, entropy, mean_kl_loss,
          total_loss, gradient global norm: RLlib keeps the last minibatch's values, so do we; vf_explained_var
          is over the minibatch's real steps, where RLlib's includes its padding rows).
  leaner  one pass over pre-stacked tensors; the rows RLlib pads each episode chunk with (its loss mask
          zeroes them) are dropped up front, so every minibatch has `minibatch_size` real env steps, as in the
          reference; module.train() once per update; metrics logged once per update; one finiteness test
          of the global gradient norm instead of one per tensor (a non-finite gradient is still zeroed,
          as RLlib's default `torch_skip_nan_gradients=False` does).

Where a feature needs RLlib's generic path, `update` hands over to it unchanged: several learners (DDP), more
than one module, stateful (recurrent) modules, the KL penalty, torch.compile, grad scalers, torch lr schedulers,
gradient clipping other than by global norm, `torch_skip_nan_gradients=True` and data iterators; rollouts go
through RLlib's learner connector (as episode chunks) with a custom learner connector or without a critic.
"""

from __future__ import annotations

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import ALL_MODULES
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.metrics import (
    CONNECTOR_PIPELINE_TIMER,
    LEARNER_CONNECTOR,
    LEARNER_CONNECTOR_SUM_EPISODES_LENGTH_IN,
    LEARNER_CONNECTOR_SUM_EPISODES_LENGTH_OUT,
    MODULE_TRAIN_BATCH_SIZE_MEAN,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    WEIGHTS_SEQ_NO,
)

from armillary.algorithms.ppo import losses
from armillary.algorithms.ppo.module import MultiValuePPOModule
from armillary.algorithms.ppo.rollout import Rollout, expand, in_global_env_order, train_batch

# The columns the loss reads; everything else in the train batch stays behind.
_LOSS_COLUMNS = (Columns.OBS, Columns.ACTIONS, Columns.ACTION_LOGP, Postprocessing.ADVANTAGES,
                 Postprocessing.VALUE_TARGETS)


def minibatch_loss(module, batch: dict[str, torch.Tensor], *, clip_param: float, vf_clip_param: float,
                   vf_loss_coeff: float, entropy_coeff: float, use_critic: bool = True,
                   with_stats: bool = False, fwd_out: dict | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss (losses.ppo_loss) on a minibatch of real (unpadded) rows, through the module's own train forward,
    critic and action distribution: RLlib's `PPOTorchLearner.compute_loss_for_module` without the KL term. A
    module with K value streams (module.MultiValuePPOModule) has values and targets [B, K]. fwd_out: the module's
    train forward on this batch, when the caller has run it already (a method that reuses its outputs)."""
    if fwd_out is None:
        fwd_out = module._forward_train(batch)  # module.train() is set once per update by the caller
    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    logp = dist.logp(batch[Columns.ACTIONS])
    # RLlib computes the entropy whatever its weight; with a zero weight it only matters for the logged figure.
    entropy = dist.entropy() if entropy_coeff or with_stats else torch.zeros((), device=logp.device)
    values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS)) if use_critic else None
    return losses.ppo_loss(logp, batch[Columns.ACTION_LOGP], batch[Postprocessing.ADVANTAGES], entropy, values,
                           batch[Postprocessing.VALUE_TARGETS] if use_critic else None, clip_param=clip_param,
                           vf_clip_param=vf_clip_param, vf_loss_coeff=vf_loss_coeff, entropy_coeff=entropy_coeff,
                           stream_names=value_streams(module), with_stats=with_stats)


def value_streams(module) -> tuple[str, ...]:
    """The names of a module's value streams: () for RLlib's one-output critic."""
    return module.value_streams if isinstance(module, MultiValuePPOModule) else ()


def multi_stream_loss_for_module(learner: PPOTorchLearner, module_id, config, batch, fwd_out) -> torch.Tensor:
    """RLlib's generic update path (`compute_loss_for_module`) for a module with K value streams: the same loss as
    the lean loop (losses.ppo_loss) on the batch's real rows (RLlib's LOSS_MASK), plus RLlib's KL penalty when
    configured, with RLlib's figures and `vf_loss_<stream>` logged per update."""
    module = learner.module[module_id].unwrapped()
    mask = batch.get(Columns.LOSS_MASK)

    def real(column: torch.Tensor) -> torch.Tensor:
        return column[mask] if mask is not None else column

    dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
    total, stats = losses.ppo_loss(
        real(dist.logp(batch[Columns.ACTIONS])), real(batch[Columns.ACTION_LOGP]),
        real(batch[Postprocessing.ADVANTAGES]), real(dist.entropy()), real(values),
        real(batch[Postprocessing.VALUE_TARGETS]), clip_param=config.clip_param, vf_clip_param=config.vf_clip_param,
        vf_loss_coeff=config.vf_loss_coeff,
        entropy_coeff=learner.entropy_coeff_schedulers_per_module[module_id].get_current_value(),
        stream_names=value_streams(module), with_stats=True)
    if config.use_kl_loss:
        previous = module.get_exploration_action_dist_cls().from_logits(batch[Columns.ACTION_DIST_INPUTS])
        stats["mean_kl_loss"] = real(previous.kl(dist)).mean()
        total = total + learner.curr_kl_coeffs_per_module[module_id] * stats["mean_kl_loss"]
    learner.metrics.log_dict(stats, key=module_id, window=1)
    return total


def set_learning_rate(optimizer, lr) -> None:
    """The learners' `_set_optimizer_lr`: RLlib's lr schedule hands over a 0-d tensor, which the multi-tensor Adam
    (ours on every device, torch's default on GPUs) refuses unless capturable=True; a Python float is the same step."""
    for group in optimizer.param_groups:
        group["lr"] = float(lr)


class LeanPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPOTorchLearner whose `update` runs the epochs x minibatches in one tight loop (see module doc)."""

    num_lean_updates: int = 0  # updates that took the lean path (the rest went to RLlib's); tests read it
    num_array_updates: int = 0  # of those, updates whose batch came from Rollout arrays (no learner connector)

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        """RLlib's default (Adam on all of the module's parameters, lr from config.lr), with torch's multi-tensor
        implementation: the same update, in a few batched kernels instead of a Python loop over the parameter
        tensors (torch already picks it on GPUs; on CPUs it defaults to the loop, ~25% slower for 64-64 nets)."""
        params = self.get_parameters(self._module[module_id])
        optimizer = torch.optim.Adam(params, foreach=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    _set_optimizer_lr = staticmethod(set_learning_rate)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        """RLlib's generic path (the lean loop calls minibatch_loss): RLlib's PPO loss, or for a module with several
        value streams the same loss as the lean loop's."""
        if isinstance(self.module[module_id].unwrapped(), MultiValuePPOModule):
            return multi_stream_loss_for_module(self, module_id, config, batch, fwd_out)
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)

    def _trained_module_id(self) -> str | None:
        """The one module the lean loop trains (None: it does not apply). Here: the only module there is."""
        return next(iter(self.module.keys())) if len(self.module) == 1 else None

    def lean_path_applies(self) -> bool:
        """Whether this learner's set-up is one the lean loop covers; otherwise RLlib's own update runs."""
        config = self.config
        module_id = self._trained_module_id()
        if module_id is None or config.num_learners > 1 or config.torch_compile_learner:
            return False
        if self._grad_scalers is not None or self._lr_scheduler_classes:
            return False
        module_config = config.get_config_for_module(module_id)
        if module_config.use_kl_loss or self.module[module_id].is_stateful():
            return False
        # The lean loop clips by global norm and zeroes non-finite gradients (RLlib's defaults); other modes
        # are RLlib's to run.
        if module_config.grad_clip and module_config.grad_clip_by != "global_norm":
            return False
        if config.torch_skip_nan_gradients:
            return False
        optimizers = self.get_optimizers_for_module(module_id)
        return len(optimizers) == 1

    def array_path_applies(self) -> bool:
        """Whether `Rollout`s can go straight to the train batch (rollout.train_batch) instead of through RLlib's
        learner connector: only with the default connector pipeline (whose GAE it reproduces) and a critic."""
        config = self.config
        if config._learner_connector is not None or not config.add_default_connectors_to_learner_pipeline:
            return False
        module_id = self._trained_module_id()
        return config.get_config_for_module(module_id).use_critic and not callable(config.policies_to_train)

    def update(self, batch=None, batches=None, batch_refs=None, episodes=None, episodes_refs=None,
               data_iterators=None, training_data: TrainingData | None = None, *, timesteps=None,
               num_total_minibatches: int = 0, num_epochs: int = 1, minibatch_size: int | None = None,
               shuffle_batch_per_epoch: bool = False, _no_metrics_reduce: bool = False, **kwargs):
        kwargs.pop("return_state", None)  # remote learners get it; RLlib's Learner.update ignores it too
        if training_data is None and data_iterators is None:
            training_data = TrainingData(batch=batch, batches=batches, batch_refs=batch_refs, episodes=episodes,
                                         episodes_refs=episodes_refs)
            batch = batches = batch_refs = episodes = episodes_refs = None
        if training_data is not None:
            training_data.validate()
            training_data.solve_refs()
        lean = not (data_iterators or num_total_minibatches or kwargs) and self.lean_path_applies()
        samples = training_data.episodes if training_data is not None else None
        rollouts = samples is not None and any(isinstance(sample, Rollout) for sample in samples)
        use_arrays = (lean and rollouts and all(isinstance(sample, Rollout) for sample in samples)
                      and self.array_path_applies())
        if rollouts and not use_arrays:  # everything else takes RLlib's episode chunks
            training_data.episodes = expand(samples)
        if not lean:
            return super().update(batch=batch, batches=batches, batch_refs=batch_refs, episodes=episodes,
                                  episodes_refs=episodes_refs, data_iterators=data_iterators,
                                  training_data=training_data, timesteps=timesteps,
                                  num_total_minibatches=num_total_minibatches, num_epochs=num_epochs,
                                  minibatch_size=minibatch_size, shuffle_batch_per_epoch=shuffle_batch_per_epoch,
                                  _no_metrics_reduce=_no_metrics_reduce, **kwargs)

        self._check_is_built()
        self.num_lean_updates += 1
        timesteps = timesteps or {}
        self.before_gradient_based_update(timesteps=timesteps)
        self._weights_seq_no += 1
        module_id = self._trained_module_id()
        if use_arrays:
            self.num_array_updates += 1
            columns = self._columns_from_rollouts(module_id, in_global_env_order(samples)) \
                if self.should_module_be_updated(module_id) else None
        else:
            # Episodes -> one tensor batch through the learner connector (this is where GAE runs), as RLlib does.
            multi_batch = self._make_batch_if_necessary(training_data=training_data)
            columns = None
            if module_id in multi_batch.policy_batches and self.should_module_be_updated(module_id, multi_batch):
                module_batch = multi_batch.policy_batches[module_id]
                self._compute_off_policyness({module_id: module_batch})
                columns = self._loss_columns(module_batch)
        if columns is not None:
            self._train_module(module_id, columns, num_epochs=num_epochs, minibatch_size=minibatch_size,
                               shuffle=shuffle_batch_per_epoch)
        self.after_gradient_based_update(timesteps=timesteps)
        return None if _no_metrics_reduce else self.metrics.reduce()

    def _loss_columns(self, module_batch) -> dict[str, torch.Tensor]:
        """The loss's columns of RLlib's (padded) module batch, real rows only: RLlib pads each episode chunk with
        one artificial step for the GAE bootstrap and masks it out of every mean; dropping those rows gives the
        same means over exactly the real steps."""
        columns = {key: torch.as_tensor(module_batch[key], device=self._device) for key in _LOSS_COLUMNS}
        if Columns.LOSS_MASK in module_batch:
            mask = torch.as_tensor(module_batch[Columns.LOSS_MASK], device=self._device).bool()
            columns = {key: value[mask] for key, value in columns.items()}
        return columns

    def _columns_from_rollouts(self, module_id: str, rollouts: list[Rollout]) -> dict[str, torch.Tensor]:
        """The loss's columns straight from the rollouts' arrays: one value forward over all their observations,
        GAE and standardisation as RLlib's learner connector computes them (rollout.train_batch), and the figures
        that connector logs (episode lengths in and out; the per-connector timers have no counterpart here)."""
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        with self.metrics.log_time((ALL_MODULES, LEARNER_CONNECTOR, CONNECTOR_PIPELINE_TIMER)):
            values = []
            with torch.no_grad():
                for rollout in rollouts:
                    obs = rollout.observations
                    flat = torch.as_tensor(obs.reshape(-1, *obs.shape[2:]), device=self._device)
                    if flat.dtype == torch.float64:  # as RLlib's NumpyToTensor does
                        flat = flat.float()
                    values.append(module.compute_values({Columns.OBS: flat}).reshape(obs.shape[:2]).cpu().numpy())
            batch = train_batch(rollouts, values, gamma=config.gamma, lambda_=config.lambda_)
        return self._columns_of_train_batch(module_id, rollouts, batch)

    def _columns_of_train_batch(self, module_id: str, rollouts: list[Rollout],
                                batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The loss's columns of a rollout train batch (rollout.train_batch) as tensors on the learner's device, and
        the figures RLlib's learner connector would log for it."""
        columns = {}
        for key in _LOSS_COLUMNS:
            value = torch.as_tensor(batch[key], device=self._device)
            columns[key] = value.float() if value.dtype == torch.float64 else value
        steps = len(batch[Postprocessing.ADVANTAGES])
        chunks = sum(int(rollout.chunk_end.sum()) for rollout in rollouts)
        self.metrics.log_value((ALL_MODULES, LEARNER_CONNECTOR_SUM_EPISODES_LENGTH_IN), steps)
        self.metrics.log_value((ALL_MODULES, LEARNER_CONNECTOR_SUM_EPISODES_LENGTH_OUT), steps + chunks)
        self._compute_off_policyness({module_id: {WEIGHTS_SEQ_NO: torch.as_tensor(batch[WEIGHTS_SEQ_NO])}})
        return columns

    def _train_module(self, module_id: str, columns: dict[str, torch.Tensor], *, num_epochs: int,
                      minibatch_size: int | None, shuffle: bool) -> None:
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        (optimizer_name, optimizer), = self.get_optimizers_for_module(module_id)
        params = [p for group in optimizer.param_groups for p in group["params"]]

        num_rows = len(columns[Columns.OBS])
        minibatch_size = min(minibatch_size or num_rows, num_rows)
        loss_args = dict(clip_param=config.clip_param, vf_clip_param=config.vf_clip_param,
                         vf_loss_coeff=config.vf_loss_coeff,
                         entropy_coeff=float(self.entropy_coeff_schedulers_per_module[module_id].get_current_value()),
                         use_critic=config.use_critic)

        module.train()
        # Every minibatch is full, as with RLlib's cyclic minibatch iterator: ceil(rows / size) minibatches per
        # epoch, the last one topped up from the start of the epoch's order (a 4010-step batch in 128s would
        # otherwise end each epoch with a 42-step minibatch, a 401-step batch in 100s with a 1-step one).
        per_epoch = -(-num_rows // minibatch_size)
        starts = range(0, per_epoch * minibatch_size, minibatch_size)
        last = (num_epochs - 1, starts[-1])
        for epoch in range(num_epochs):
            # Shuffle once per epoch (as RLlib does, and only with several epochs), then take contiguous slices:
            # one gather per column per epoch instead of one per minibatch.
            epoch_columns = columns
            wrap = per_epoch * minibatch_size - num_rows
            if (shuffle and num_epochs > 1) or wrap:
                order = (torch.randperm(num_rows, device=self._device, generator=self._shuffle_generator())
                         if shuffle and num_epochs > 1 else torch.arange(num_rows, device=self._device))
                order = torch.cat([order, order[:wrap]])
                epoch_columns = {key: value[order] for key, value in columns.items()}
            for start in starts:
                minibatch = {key: value[start:start + minibatch_size] for key, value in epoch_columns.items()}
                with_stats = (epoch, start) == last
                loss, stats = self._minibatch_loss(module, minibatch, with_stats=with_stats, **loss_args)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                global_norm = self._clip_and_sanitise(params, config.grad_clip)
                optimizer.step()

        # RLlib logs these per minibatch with window=1, i.e. it reports the last minibatch's: so do we.
        self.metrics.log_dict(stats, key=module_id, window=1)
        self.metrics.log_value((module_id, self.TOTAL_LOSS_KEY), loss.detach(), window=1)
        if global_norm is not None:
            self.metrics.log_value((module_id, f"gradients_{optimizer_name}_global_norm"),
                                   global_norm, window=1)
        self._log_steps_trained(module_id, per_epoch * minibatch_size, num_epochs, per_epoch)

    def _minibatch_loss(self, module, minibatch: dict[str, torch.Tensor], **loss_args) -> tuple[torch.Tensor, dict]:
        """One minibatch's loss and figures in the lean loop: PPO's (minibatch_loss). A method that adds terms of its
        own on the same minibatch overrides this (e.g. algorithms/self_consistency/learner.py)."""
        return minibatch_loss(module, minibatch, **loss_args)

    _shuffle: torch.Generator | None = None

    def _shuffle_generator(self) -> torch.Generator:
        """The minibatch order's own generator, seeded by the experiment's seed: torch's process-wide one is shared with
        whatever else runs in the learner's process (an env runner, with 0 runners), which depends on the layout."""
        if self._shuffle is None:
            self._shuffle = torch.Generator(device=self._device)
            seed = self.config.seed
            self._shuffle.manual_seed(seed if seed is not None else torch.seed())
        return self._shuffle

    @staticmethod
    def _clip_and_sanitise(params: list[torch.Tensor], grad_clip: float | None) -> torch.Tensor | None:
        """Global-norm clip (RLlib's coefficient: grad_clip / max(norm + 1e-6, grad_clip)); a non-finite
        gradient is zeroed as RLlib's `torch_skip_nan_gradients=False` does, found with one test on the norm."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return None
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if not torch.isfinite(norm):
            for g in grads:
                torch.nan_to_num(g, out=g)
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if grad_clip:
            coefficient = torch.clamp(grad_clip / torch.clamp(norm + 1e-6, min=grad_clip), max=1.0)
            torch._foreach_mul_(grads, coefficient)
        return norm

    def _log_steps_trained(self, module_id: str, rows_per_epoch: int, num_epochs: int, minibatches_per_epoch: int):
        """The step counters RLlib's `_log_steps_trained_metrics` keeps, logged once for the whole update."""
        trained = rows_per_epoch * num_epochs
        log = self.metrics.log_value
        log((module_id, WEIGHTS_SEQ_NO), self._weights_seq_no, window=1)
        log((module_id, MODULE_TRAIN_BATCH_SIZE_MEAN), rows_per_epoch / minibatches_per_epoch, reduce="mean")
        log((module_id, NUM_MODULE_STEPS_TRAINED), trained, reduce="sum")
        log((module_id, NUM_MODULE_STEPS_TRAINED_LIFETIME), trained, reduce="lifetime_sum", with_throughput=True)
        log((ALL_MODULES, NUM_MODULE_STEPS_TRAINED), trained, reduce="sum", with_throughput=True)
        log((ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), trained, reduce="lifetime_sum", with_throughput=True)
        log((ALL_MODULES, NUM_ENV_STEPS_TRAINED), trained, reduce="sum", with_throughput=True)
        log((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), trained, reduce="lifetime_sum", with_throughput=True)
