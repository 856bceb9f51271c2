"""The cluster path on real multi-node Ray, simulated on one machine: several raylets (`ray.cluster_utils.Cluster`),
each with its own logical resources (a fake `GPU: 1` included), and the real autoscaler over Ray's fake multi-node
provider. Nothing in the project is stubbed: experiments go through the `armillary` CLI as a user runs them.

These are slow (each starts several Ray nodes) and run with `python -m pytest -m slow tests/test_cluster.py`.
Every node here gets only 1-2 logical CPUs and experiments are smoke-sized: the machine they were written on has 2
cores shared with others. Each cluster is torn down by the test that started it (never `ray stop`, which would stop
every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from test_reliability import ARMILLARY, RAY_CLI, _env, _free_port, _pids_of, _run_dirs, _stop_ray_head, _wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Smoke-sized PPO on CartPole, one trial; the profile and env runners are set per test.
SMALL = {
    "preset": "ppo/cartpole",
    "name": "test/cluster",
    "algorithm": {"config": {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1}},
    "resources": {"num_env_runners": 1, "num_envs_per_env_runner": 1},
    "seeds": [0],
    "stop": {"iterations": 2},
    "failure": {"max_failures": 0},
}


def _node_ports() -> dict:
    # Every agent on its own free port: other Ray instances on this machine may hold the defaults.
    return {"dashboard_agent_listen_port": _free_port(), "runtime_env_agent_port": _free_port(),
            "metrics_export_port": _free_port(), "metrics_agent_port": _free_port()}


@contextmanager
def ray_cluster(monkeypatch, head_cpus: int, workers: list[dict]):
    """A head with the dashboard (Ray's state API) and the given worker raylets; removed on exit.

    Every Ray process inherits this process's environment: one torch thread each, no display for MuJoCo."""
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # see _cli_env
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
        "num_cpus": head_cpus, "gcs_server_port": _free_port(), "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": _free_port(), "ray_client_server_port": _free_port(), **_node_ports()})
    try:
        nodes = [cluster.add_node(**worker, **_node_ports()) for worker in workers]
        cluster.wait_for_nodes()
        yield cluster, nodes
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def _dashboard(cluster) -> str:
    return f"http://{cluster.webui_url}"


def _write_spec(folder: Path, **changes) -> Path:
    spec = {**SMALL, **changes}
    path = folder / f"{spec['name'].replace('/', '_')}-{spec['resources'].get('profile', 'x')}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _cli_env(runs: Path, cluster) -> dict:
    # The simulated cluster runs without token authentication; a client in token mode (the CLI's default) would not
    # be heard by it (its actors are cancelled as soon as they are created).
    return {**_env(runs), "RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"}


class _PlacementRecorder:
    """Polls Ray's placement group table while an experiment runs: where each bundle (resource request) was placed."""

    def __init__(self):
        import ray

        self._ray = ray
        self.bundles: dict[tuple[str, int], tuple[dict, str]] = {}  # (group, index) -> (resources, node id)
        self.min_free_gpus = float("inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        from ray.util import placement_group_table

        self._earlier = set(placement_group_table())  # removed groups stay in the table
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _poll(self):
        from ray.util import placement_group_table

        while not self._stop.is_set():
            for group_id, group in placement_group_table().items():
                if group_id in self._earlier:
                    continue
                for index, node in (group.get("bundles_to_node_id") or {}).items():
                    if node:
                        self.bundles[(group_id, int(index))] = (dict(group["bundles"][index]), node)
            self.min_free_gpus = min(self.min_free_gpus, self._ray.available_resources().get("GPU", 0.0))
            time.sleep(0.3)


def test_gpu_profile_places_learners_on_the_gpu_node_and_env_runners_on_cpu_nodes(tmp_path, monkeypatch):
    """Head (1 CPU), a CPU worker (2 CPUs) and a worker advertising `GPU: 1` with no CPUs (so env runners can only go to
    CPU nodes). cluster-gpu: the learner's bundle and the learner's device check land on the GPU node, the algorithm's
    and env runner's bundles on CPU nodes; the GPU is fake, so the learner fails before building, with a message that
    names the field and the node (trainable.check_learner_devices). cluster-cpu on the same cluster: nothing asks for
    the GPU, and the learner and env runner actors run on CPU nodes; the experiment completes."""
    import ray
    from ray.util.state import list_actors

    runs = tmp_path / "runs"
    with ray_cluster(monkeypatch, head_cpus=1, workers=[{"num_cpus": 2}, {"num_cpus": 0, "num_gpus": 1}]) as (
            cluster, (cpu_node, gpu_node)):
        ray.init(address=cluster.address, log_to_driver=False)
        cpu_nodes = {cluster.head_node.node_id, cpu_node.node_id}

        started = time.monotonic()
        with _PlacementRecorder() as gpu_run:
            out = subprocess.run([*ARMILLARY, "run", str(_write_spec(tmp_path, resources={
                **SMALL["resources"], "profile": "cluster-gpu"}))], cwd=tmp_path, env=_cli_env(runs, cluster),
                capture_output=True, text=True, timeout=400)
        print(f"cluster-gpu run: {time.monotonic() - started:.1f} s")
        assert out.returncode != 0, "a learner on a GPU without CUDA must not train"
        (run_dir,) = _run_dirs(runs, "test__cluster")
        (error,) = (run_dir / "tune").glob("*/error.txt")
        message = error.read_text()
        assert "resources.num_gpus_per_learner=1" in message and "sees no CUDA device" in message, \
            message[-3000:] + out.stdout[-5000:] + out.stderr[-3000:]
        assert f"node {gpu_node.node_id}" in message  # the check ran where the learner would: on the GPU node

        gpu_bundles = [node for res, node in gpu_run.bundles.values() if res.get("GPU")]
        cpu_bundles = [node for res, node in gpu_run.bundles.values() if not res.get("GPU")]
        assert gpu_bundles == [gpu_node.node_id], gpu_run.bundles
        # The algorithm's own process and the env runner: two 1-CPU bundles, both on CPU nodes.
        assert len(cpu_bundles) == 2 and set(cpu_bundles) <= cpu_nodes, gpu_run.bundles

        started = time.monotonic()
        with _PlacementRecorder() as cpu_run:
            out = subprocess.run([*ARMILLARY, "run", str(_write_spec(tmp_path, resources={
                **SMALL["resources"], "profile": "cluster-cpu"}))], cwd=tmp_path, env=_cli_env(runs, cluster),
                capture_output=True, text=True, timeout=400)
        print(f"cluster-cpu run: {time.monotonic() - started:.1f} s")
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert cpu_run.bundles and not any(res.get("GPU") for res, _ in cpu_run.bundles.values()), cpu_run.bundles
        assert cpu_run.min_free_gpus == 1.0  # the GPU was never taken
        actors = list_actors(address=_dashboard(cluster), detail=True, limit=10_000, raise_on_missing_output=False)
        # RLlib creates each remote learner as a wrapped class (`create_executable_class.<locals>._WrappedExecutable`).
        learners = [a for a in actors if "_WrappedExecutable" in a.class_name]
        runners = [a for a in actors if "EnvRunner" in a.class_name]
        assert len(learners) == 1 and len(runners) == 1, sorted(a.class_name for a in actors)
        for actor in actors:  # these two, and both runs' trial actors
            assert actor.node_id in cpu_nodes, (actor.class_name, actor.node_id)
            assert not actor.required_resources.get("GPU"), (actor.class_name, actor.required_resources)


def _alive_trial_actors(cluster) -> list:
    from ray.util.state import list_actors

    return list_actors(address=_dashboard(cluster),
                       filters=[("class_name", "=", "ImplicitFunc"), ("state", "=", "ALIVE")],
                       limit=1000, raise_on_missing_output=False)


def test_worker_node_lost_mid_run_trials_restart_elsewhere_and_every_iteration_is_kept_once(tmp_path, monkeypatch):
    """A head with no CPUs (as in k8s/base) and three 1-CPU workers; two 1-CPU trials run on two of them. The raylet of
    a node running a trial is killed once both trials have checkpointed: that trial restarts from its last checkpoint
    on the spare node, the experiment completes, and Tune's results and MLflow hold every iteration of both trials
    exactly once."""
    import ray
    from ray.util.state import list_actors

    from test_reliability import SMALL as RELIABILITY, _assert_each_iteration_once

    runs = tmp_path / "runs"
    spec = tmp_path / "node-loss.yaml"
    spec.write_text(yaml.safe_dump({**RELIABILITY, "resources": {**RELIABILITY["resources"], "profile": "cluster-cpu",
                                                                 "num_learners": 0},
                                    "failure": {"max_failures": 2}}))
    with ray_cluster(monkeypatch, head_cpus=0, workers=[{"num_cpus": 1}] * 3) as (cluster, workers):
        ray.init(address=cluster.address, log_to_driver=False)
        started = time.monotonic()
        driver = subprocess.Popen([*ARMILLARY, "run", str(spec)], cwd=tmp_path, env=_cli_env(runs, cluster),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(lambda: len(list(runs.glob("test__reliability/*/tune/*/checkpoint_000000"))) >= 2, 400,
                      "both trials' first checkpoints")
            trial_nodes = _wait_for(lambda: {a.node_id for a in _alive_trial_actors(cluster)} if len(
                _alive_trial_actors(cluster)) == 2 else None, 120, "both trials running")
            (victim,) = [w for w in workers if w.node_id in trial_nodes][:1]
            (spare,) = [w for w in workers if w.node_id not in trial_nodes]
            cluster.remove_node(victim, allow_graceful=False)
            output, _ = driver.communicate(timeout=600)
        finally:
            if driver.poll() is None:
                driver.kill()
        print(f"node-loss run: {time.monotonic() - started:.1f} s")
        assert driver.returncode == 0, output[-5000:]
        trial_actor_nodes = {a.node_id for a in list_actors(
            address=_dashboard(cluster), filters=[("class_name", "=", "ImplicitFunc")], detail=True, limit=1000,
            raise_on_missing_output=False)}
        assert spare.node_id in trial_actor_nodes, "the lost trial did not restart on the spare node"

    (run_dir,) = _run_dirs(runs)
    assert (run_dir / "COMPLETED").exists()
    _assert_each_iteration_once(runs, run_dir, iterations=8, trials=2)
    restored = []
    for result_file in (run_dir / "tune").glob("*/result.json"):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        restored += [r for r in rows if r["iterations_since_restore"] < r["training_iteration"]]
    assert restored, "no trial resumed from a checkpoint: the lost one started over"


def _alive_replicas(cluster) -> list:
    from ray.util.state import list_actors

    return [a for a in list_actors(address=_dashboard(cluster), filters=[("state", "=", "ALIVE")], detail=True,
                                   limit=1000, raise_on_missing_output=False) if a.class_name.startswith("ServeReplica:")]


def test_node_hosting_the_reward_deployment_lost_serve_replaces_the_replica_and_reward_calls_resume(tmp_path, monkeypatch):
    """The CLIP reward application (the built-in quick model, no fit) with one 1-CPU replica, on a head with no CPUs
    (Serve's controller stays there) and two 1-CPU workers: the replica runs on one worker. That worker's raylet is
    killed with the replica's process; Serve's controller starts a new replica on the other worker, and the client that env runners use
    (RewardClient) gets its answers, sending failed requests again until they are answered (or Serve's router retries
    them itself): the same rewards as before the loss."""
    import numpy as np
    import ray
    from ray import serve

    from armillary.algorithms.clip_reward.client import RewardClient
    from armillary.algorithms.clip_reward.model_settings import ServeConfig
    from armillary.algorithms.clip_reward.quick_model import resolve_model
    from armillary.algorithms.clip_reward.serve import ensure_running
    from armillary.envs.language_goals import LanguageGoalOptions, World, success_triples

    monkeypatch.setenv("ARMILLARY_CACHE_DIR", str(tmp_path / "cache"))  # the quick model, built here (≈ 1 s)
    config = ServeConfig(model=resolve_model("builtin:tiny-untrained"), app_name="clip-reward-node-loss", num_cpus=1,
                         max_batch_size=8, batch_wait_timeout_s=0.01)
    frames, goals, _ = success_triples(32, seed=0)
    goal_set = World(LanguageGoalOptions()).goals
    with ray_cluster(monkeypatch, head_cpus=0, workers=[{"num_cpus": 1}] * 2) as (cluster, workers):
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            started = time.monotonic()
            ensure_running(config)
            client = RewardClient(config.app_name, frames_per_request=8, retry_window_s=240, timeout_s=30)
            reward, probability, before = client.score(frames, goals, goal_set)
            assert before.retries == 0 and reward.shape == (32,)
            (replica,) = _alive_replicas(cluster)
            (host,) = [w for w in workers if w.node_id == replica.node_id]
            (spare,) = [w for w in workers if w is not host]

            # A lost machine takes its processes with it: the raylet and the replica's worker process, at once (a
            # worker whose raylet was killed alone lives on for a moment and still answers).
            cluster.remove_node(host, allow_graceful=False)
            try:
                os.kill(replica.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            lost = time.monotonic()
            reward_after, probability_after, after = client.score(frames, goals, goal_set)
            resumed = time.monotonic()
            print(f"reward node loss: calls answered again {resumed - lost:.1f} s after the node was lost "
                  f"({after.retries} requests sent again); total {resumed - started:.1f} s")
            # Whether this client had to send requests again depends on timing: Serve's router itself retries a
            # request whose replica became unavailable (its "temporarily unavailable" warnings). That the node was
            # lost is checked below: a new replica, on the other worker.
            assert np.array_equal(reward_after, reward) and np.allclose(probability_after, probability, atol=1e-6)
            (replacement,) = _wait_for(lambda: _alive_replicas(cluster) or None, 120, "the replacement replica")
            assert replacement.node_id == spare.node_id and replacement.actor_id != replica.actor_id
            assert str(serve.status().applications[config.app_name].status).endswith("RUNNING")
        finally:
            serve.shutdown()


def _job_driver_pids(runs: Path) -> list[int]:
    """PIDs of the Ray job entrypoints (`python -m armillary.jobs.run_experiment`) that write to this test's runs."""
    return _pids_of(runs, lambda cmdline: b"armillary.jobs.run_experiment" in cmdline)


def test_submitted_job_whose_driver_dies_resumes_from_the_shared_run_folder_when_resubmitted(tmp_path, monkeypatch):
    """`armillary submit` to a head with Ray's job server (no CPUs: the job's driver runs there, trials on a 2-CPU
    worker). The job's driver process is killed once both trials have checkpointed; submitting the same spec again
    resumes that run (same run folder, trials restored from their checkpoints) instead of starting over."""
    from test_reliability import SMALL as RELIABILITY, _assert_each_iteration_once

    runs = tmp_path / "runs"
    spec = tmp_path / "driver-loss.yaml"
    # 24 iterations: both trials are still running when both have a checkpoint in Tune's saved state (with 8, on a
    # loaded machine one trial had finished by then, and a finished trial rightly does not run again).
    spec.write_text(yaml.safe_dump({**RELIABILITY, "stop": {"iterations": 24},
                                    "resources": {**RELIABILITY["resources"], "profile": "cluster-cpu", "num_learners": 0}}))
    # The worker gets its own Ray temp folder, as a separate machine has: nodes sharing one would share the folder
    # where each node unpacks the job's working_dir, and the worker unpacking it for the trials removed the copy the
    # job's driver was running in.
    worker_temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with ray_cluster(monkeypatch, head_cpus=0, workers=[{"num_cpus": 2, "temp_dir": worker_temp}]) as (cluster, _):
        env = _cli_env(runs, cluster)
        env.pop("RAY_ADDRESS")  # `submit` talks to the job server only
        submit = [*ARMILLARY, "submit", str(spec), "--address", _dashboard(cluster), "--wait"]
        started = time.monotonic()
        first = subprocess.Popen(submit, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        try:
            def trials_with_a_saved_checkpoint() -> int:
                states = sorted(runs.glob("test__reliability/*/tune/experiment_state-*.json"))
                if not states:
                    return 0
                try:
                    trials = json.loads(states[-1].read_text())["trial_data"]
                except (ValueError, KeyError):  # being rewritten
                    return 0
                return sum("checkpoint_0" in json.dumps(trial) for trial in trials)

            _wait_for(lambda: trials_with_a_saved_checkpoint() >= 2, 400,
                      "each trial's checkpoint in the experiment state")
            pids = _job_driver_pids(runs)  # the entrypoint's shell and its python
            assert pids, "the job's driver process was not found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            output, _ = first.communicate(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode != 0 and "FAILED" in output, output[-3000:]
        (run_dir,) = _run_dirs(runs)
        assert not (run_dir / "COMPLETED").exists()

        second = subprocess.run(submit, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        print(f"driver-loss submit, kill and resubmit: {time.monotonic() - started:.1f} s")
        assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
        assert "Resuming the unfinished run" in second.stdout and "SUCCEEDED" in second.stdout

    shutil.rmtree(worker_temp, ignore_errors=True)
    assert _run_dirs(runs) == [run_dir] and (run_dir / "COMPLETED").exists()
    _assert_each_iteration_once(runs, run_dir, iterations=24, trials=2)
    for result_file in (run_dir / "tune").glob("*/result.json"):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        assert any(r["iterations_since_restore"] < r["training_iteration"] for r in rows), \
            f"{result_file.parent.name} started over instead of resuming from its checkpoint"


# ---------------------------------------------------------------------------------------------------
# Autoscaling, configured from the RayCluster manifest itself

SHORT_IDLE_TIMEOUT_S = 10  # the one value not read from k8s/: the manifest's 120 s / 300 s would make this test slow


def autoscaling_config_from_manifest(gcs_address: str) -> dict:
    """The autoscaler config that KubeRay would give Ray for k8s/overlays/gpu's RayCluster (Ray's own KubeRay
    translation: node types from the worker groups, resources from the container limits, min/max replicas, per-group
    idle timeouts), with Ray's fake multi-node provider in place of the Kubernetes one and short idle timeouts."""
    from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_ID, FAKE_HEAD_NODE_TYPE
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    from armillary.platform import k8s
    from test_k8s import K8S, find, kustomize_build

    ray_cluster_cr = find(kustomize_build(K8S / "overlays" / "gpu"), "RayCluster", k8s.CLUSTER_NAME)
    config = _derive_autoscaling_config_from_ray_cr(ray_cluster_cr)
    types = config["available_node_types"]
    types[FAKE_HEAD_NODE_TYPE] = types.pop(config["head_node_type"])
    config["head_node_type"] = FAKE_HEAD_NODE_TYPE
    for node_type in types.values():
        # Each fake node's object store small; memory is not part of what is tested (the fake provider would pass it
        # as a custom resource, which Ray refuses for "memory").
        node_type["resources"]["object_store_memory"] = 150 * 1024 * 1024
        node_type["resources"].pop("memory", None)
        if "idle_timeout_s" in node_type:
            node_type["idle_timeout_s"] = SHORT_IDLE_TIMEOUT_S
    config["idle_timeout_minutes"] = SHORT_IDLE_TIMEOUT_S / 60
    # Ray's fake provider, named as an "external" one: the "fake_multinode" type reads its defaults from an
    # example.yaml that the Ray 2.60 wheel does not ship.
    config["provider"] = {"type": "external",
                          "module": "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider",
                          "gcs_address": gcs_address, "head_node_id": FAKE_HEAD_NODE_ID,
                          "launch_multiple": True, "use_node_id_as_ip": True, "disable_node_updaters": True,
                          "disable_launch_config_check": True}
    return config, ray_cluster_cr["spec"]


def _own_ray_pids(gcs_address: str) -> list[int]:
    """Processes of the cluster at gcs_address (every raylet and worker carries the GCS address in its command line)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and gcs_address.encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@contextmanager
def autoscaling_head(tmp_path, config: dict, port: int, env: dict):
    """`ray start --head` with the autoscaler on the given config (what AutoscalingCluster does, but without its
    `ray stop --force`, which would stop every Ray on the machine); everything it started is killed on exit."""
    import ray

    config_file = tmp_path / "autoscaling.json"
    config_file.write_text(json.dumps(config))
    head_resources = config["available_node_types"][config["head_node_type"]]["resources"]
    log = (tmp_path / "head.log").open("w")
    head = subprocess.Popen(
        [RAY_CLI, "start", "--head", "--block", f"--port={port}", f"--num-cpus={int(head_resources.get('CPU', 0))}",
         f"--autoscaling-config={config_file}", "--include-dashboard=false", "--object-store-memory=157286400",
         f"--temp-dir={tempfile.mkdtemp(prefix='ray-', dir='/tmp')}",
         f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
         f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
         f"--ray-client-server-port={_free_port()}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    gcs_address = config["provider"]["gcs_address"]
    try:
        yield gcs_address
    finally:
        ray.shutdown()
        _stop_ray_head(head)
        for pid in _own_ray_pids(gcs_address):  # fake worker nodes are the autoscaler's, maybe outside its group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def test_gpu_group_scales_up_from_zero_for_a_gpu_experiment_and_back_to_zero_when_idle(tmp_path, monkeypatch):
    """Ray's autoscaler (v2, as the manifest asks) over the fake multi-node provider, with the node types, minimums and
    idle timeouts of k8s/overlays/gpu's RayCluster. No worker at the start (every group's minimum is 0); a cluster-gpu
    experiment's learner asks for a GPU, so a gpu-workers node is added and the trial is placed on it; its learner
    finds no CUDA there (the GPU is simulated) and fails with trainable.check_learner_devices' message; once nothing
    runs, the GPU node is removed after the idle timeout."""
    import ray
    from ray._private.services import get_node_ip_address
    from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_ID

    port = _free_port()
    config, cluster_spec = autoscaling_config_from_manifest(f"{get_node_ip_address()}:{port}")
    gpu_group = config["available_node_types"]["gpu-workers"]
    assert gpu_group["min_workers"] == 0 and gpu_group["resources"]["GPU"] == 1  # read from the manifest
    assert config["available_node_types"]["cpu-workers"]["min_workers"] == 0
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
           "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl", "RAY_AIR_NEW_OUTPUT": "0"}
    assert cluster_spec["autoscalerOptions"]["version"] == "v2"
    env.update({"RAY_enable_autoscaler_v2": "1", "RAY_CLOUD_INSTANCE_ID": FAKE_HEAD_NODE_ID,
                "RAY_OVERRIDE_NODE_ID_FOR_TESTING": FAKE_HEAD_NODE_ID})
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")

    runs = tmp_path / "runs"
    started = time.monotonic()
    with autoscaling_head(tmp_path, config, port, env) as gcs_address:
        _wait_for(lambda: _port_open(gcs_address), 120, "the head's GCS")
        ray.init(address=gcs_address, log_to_driver=False)

        def gpu_nodes() -> list[str]:
            return [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")]

        assert gpu_nodes() == []
        run_env = {**_env(runs), "RAY_ADDRESS": gcs_address, "RAY_AUTH_MODE": "disabled"}
        spec = _write_spec(tmp_path, resources={**SMALL["resources"], "profile": "cluster-gpu"})
        driver = subprocess.Popen([*ARMILLARY, "run", str(spec)], cwd=tmp_path, env=run_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            try:
                (gpu_node,) = _wait_for(gpu_nodes, 300, "the autoscaler to add a GPU node")
            except AssertionError as err:  # say why: the driver's own output (refused? placed elsewhere?)
                driver.kill()
                raise AssertionError(f"{err}; the driver printed:\n{driver.communicate(timeout=30)[0][-3000:]}") from err
            scaled_up = time.monotonic()
            output, _ = driver.communicate(timeout=400)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert driver.returncode != 0, output[-3000:]
        (run_dir,) = _run_dirs(runs, "test__cluster")
        (error,) = (run_dir / "tune").glob("*/error.txt")
        assert f"on node {gpu_node}" in error.read_text() and "sees no CUDA device" in error.read_text()
        idle_from = time.monotonic()
        _wait_for(lambda: gpu_nodes() == [], 180, "the idle GPU node to be removed")
        print(f"autoscaling: GPU node up after {scaled_up - started:.1f} s, "
              f"removed {time.monotonic() - idle_from:.1f} s "
              f"after the run (idle timeout {SHORT_IDLE_TIMEOUT_S} s); total {time.monotonic() - started:.1f} s")


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False
