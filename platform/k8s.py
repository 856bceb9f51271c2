"""Kubernetes manifests for an experiment: the same spec that runs on a laptop, as a KubeRay RayJob.

`render_rayjob(spec)` returns YAML that `kubectl apply -f -` accepts. By default the RayJob brings up
its own Ray cluster, sized from the spec's resources, and deletes it when the job ends (so idle GPUs
don't burn); with `existing_cluster=NAME` it runs on a long-lived RayCluster such as k8s/base's.

The pod templates below are the single description of an Armillary Ray pod. k8s/base/raycluster.yaml
and k8s/overlays/gpu hold the same templates as commented YAML for people who read manifests rather
than Python; tests/test_k8s.py fails if the two drift apart. Everything a RayJob pod needs that is
not in the job itself (the runs PVC, the MLflow Service, the Ray auth Secret) comes from k8s/base.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # for annotations only; the functions import what they use when called
    from armillary.platform.spec import ExperimentSpec

# Must equal the Ray in the image (docker/Dockerfile's base tag) and in pyproject.toml; tests check both.
RAY_VERSION = "2.60.0"

NAMESPACE = "armillary"
CLUSTER_NAME = "armillary"  # the long-lived RayCluster of k8s/base
IMAGE_REPOSITORY = "armillary/ray"  # + "-cpu" / "-gpu"; built from docker/Dockerfile

# Shared storage for Tune results and checkpoints: one ReadWriteMany volume on every Ray pod, so a trial
# restarted on another node finds its checkpoints (Tune's storage_path must be shared in a cluster).
RUNS_PVC = "armillary-runs"
RUNS_MOUNT = "/mnt/armillary"
RUNS_DIR = f"{RUNS_MOUNT}/runs"

# KubeRay (authOptions.secretName) reads the Ray token from this Secret's `auth_token` key and injects
# RAY_AUTH_MODE/RAY_AUTH_TOKEN into every Ray container and the job submitter. The user creates it
# (k8s/README.md); no token is ever written into a manifest.
RAY_AUTH_SECRET = "armillary-ray-auth"

# Same-namespace Service name, so the URI holds in whatever namespace the stack is deployed.
MLFLOW_TRACKING_URI = "http://armillary-mlflow:5000"

# Where Ray's dashboard finds Prometheus and Grafana (kube-prometheus-stack, release "prometheus" in
# namespace "prometheus-system", as in KubeRay's monitoring guide). Only the dashboard's embedded
# charts use these; metrics collection works without them.
PROMETHEUS_URL = "http://prometheus-kube-prometheus-prometheus.prometheus-system.svc:9090"
GRAFANA_URL = "http://prometheus-grafana.prometheus-system.svc:80"
GRAFANA_IFRAME_URL = "http://127.0.0.1:3000"  # what the browser loads: Grafana port-forwarded locally

# Pod sizes. A pod should fill most of one node; size these to your node types.
HEAD_RESOURCES = {"cpu": "2", "memory": "8Gi"}
CPU_WORKER_RESOURCES = {"cpu": "8", "memory": "32Gi"}
GPU_WORKER_RESOURCES = {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"}
GPUS_PER_GPU_WORKER = 1

# The autoscaler removes a worker that has had no Ray tasks or actors for this long. GPU workers go
# sooner: they are what costs money, and minReplicas 0 lets the GPU group scale to zero.
IDLE_TIMEOUT_S = 300
GPU_IDLE_TIMEOUT_S = 120

# RayJob housekeeping: keep the finished cluster this long (to read logs), and give up if the cluster
# never gets running (e.g. no GPU capacity) instead of holding CPU nodes forever.
JOB_TTL_AFTER_FINISHED_S = 300
JOB_PRE_RUNNING_DEADLINE_S = 3600

# KubeRay limits RayJob names to 47 characters (its RayCluster gets a 6-character suffix).
RAYJOB_NAME_LIMIT = 47

PART_OF = {"app.kubernetes.io/part-of": "armillary"}


def default_image(variant: str) -> str:
    """armillary/ray-cpu:<version> or armillary/ray-gpu:<version> (see docker/Dockerfile)."""
    if variant not in ("cpu", "gpu"):
        raise ValueError(f"image variant must be 'cpu' or 'gpu', got {variant!r}")
    return f"{IMAGE_REPOSITORY}-{variant}:{metadata.version('armillary')}"


# ---------------------------------------------------------------------------------------------------
# Pod templates


def _resources(amounts: dict[str, str]) -> dict[str, dict[str, str]]:
    # requests == limits: Ray sizes itself from the limits, and the pod gets the Guaranteed QoS class.
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _env(*, head: bool) -> list[dict[str, str]]:
    env = [
        {"name": "ARMILLARY_RUNS_DIR", "value": RUNS_DIR},
        {"name": "MLFLOW_TRACKING_URI", "value": MLFLOW_TRACKING_URI},
    ]
    if head:
        env += [
            {"name": "RAY_PROMETHEUS_HOST", "value": PROMETHEUS_URL},
            {"name": "RAY_GRAFANA_HOST", "value": GRAFANA_URL},
            {"name": "RAY_GRAFANA_IFRAME_HOST", "value": GRAFANA_IFRAME_URL},
        ]
    return env


def _pod_template(container: dict[str, Any], *, gpu: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        # gid 100 ("users") is the ray user's group in the Ray images: makes the runs volume writable.
        "securityContext": {"fsGroup": 100, "fsGroupChangePolicy": "OnRootMismatch"},
        "containers": [container],
        "volumes": [
            {"name": "runs", "persistentVolumeClaim": {"claimName": RUNS_PVC}},
            # Ray's object store lives in /dev/shm; a container's default 64 MiB would push it to disk.
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],
    }
    if gpu:
        spec["nodeSelector"] = {"nvidia.com/gpu.present": "true"}  # set by NVIDIA GPU feature discovery
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"metadata": {"labels": dict(PART_OF)}, "spec": spec}


def _ray_container(name: str, image: str, amounts: dict[str, str], ports: list[dict], *, head: bool) -> dict:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": ports,
        "env": _env(head=head),
        "resources": _resources(amounts),
        "volumeMounts": [
            {"name": "runs", "mountPath": RUNS_MOUNT},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }


def head_group(image: str) -> dict[str, Any]:
    ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
        {"name": "serve", "containerPort": 8000},
        {"name": "metrics", "containerPort": 8080},  # Ray's Prometheus endpoint (PodMonitor)
        {"name": "as-metrics", "containerPort": 44217},  # autoscaler metrics
        {"name": "dash-metrics", "containerPort": 44227},  # dashboard metrics
    ]
    return {
        # num-cpus 0: nothing but the job driver runs on the head, so losing a worker never takes the
        # cluster's control plane with it, and the autoscaler sees demand it must meet with workers.
        "rayStartParams": {"num-cpus": "0", "metrics-export-port": "8080"},
        "template": _pod_template(_ray_container("ray-head", image, HEAD_RESOURCES, ports, head=True)),
    }


def worker_group(kind: str, image: str, *, replicas: int, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    """The CPU ("cpu") or GPU ("gpu") worker group; the GPU one asks for whole GPUs, tolerates the
    GPU taint, selects GPU nodes and is removed sooner when idle."""
    if kind not in ("cpu", "gpu"):
        raise ValueError(f"worker group kind must be 'cpu' or 'gpu', got {kind!r}")
    gpu = kind == "gpu"
    ports = [{"name": "metrics", "containerPort": 8080}]
    amounts = GPU_WORKER_RESOURCES if gpu else CPU_WORKER_RESOURCES
    group: dict[str, Any] = {
        "groupName": f"{kind}-workers",
        "replicas": replicas,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        # Ray reads CPU, memory and nvidia.com/gpu from the container limits; nothing to repeat here.
        "rayStartParams": {"metrics-export-port": "8080"},
        "template": _pod_template(_ray_container("ray-worker", image, amounts, ports, head=False), gpu=gpu),
    }
    if gpu:
        group["idleTimeoutSeconds"] = GPU_IDLE_TIMEOUT_S  # per-group timeouts need autoscaler v2
    return group


def ray_cluster_spec(*, head_image: str, worker_groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rayVersion": RAY_VERSION,
        "authOptions": {"mode": "token", "secretName": RAY_AUTH_SECRET},
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "version": "v2",
            "upscalingMode": "Default",
            "idleTimeoutSeconds": IDLE_TIMEOUT_S,
            "resources": _resources({"cpu": "500m", "memory": "512Mi"}),
        },
        "headGroupSpec": head_group(head_image),
        "workerGroupSpecs": worker_groups,
    }


# ---------------------------------------------------------------------------------------------------
# Sizing a RayJob's cluster from the spec


@dataclass(frozen=True)
class ClusterShape:
    """Worker pods a RayJob's cluster starts with; the autoscaler may go to max_* and down to 0."""

    concurrent_trials: int
    cpus_needed: float
    gpus_needed: float
    cpu_workers: int
    gpu_workers: int

    @property
    def max_cpu_workers(self) -> int:
        # CPU pods are cheap; headroom lets the autoscaler absorb a low estimate instead of hanging.
        return max(1, 2 * self.cpu_workers)


def _num_trials(spec: ExperimentSpec) -> int:
    """Trials Tune runs: seeds x samples x every grid axis (the other axes are sampled)."""
    trials = len(spec.seeds) * spec.tune.num_samples
    for dim in spec.tune.search_space.values():
        if dim.grid is not None:
            trials *= len(dim.grid)
    return trials


def cluster_shape(spec: ExperimentSpec) -> ClusterShape:
    """Pods for all concurrent trials, from the same resolved resources the RLlib config uses.

    Per trial (RLlib's accounting): 1 CPU for the algorithm's own process, num_cpus_per_env_runner per
    env runner, 1 CPU per CPU learner ("auto" is 1 without a GPU, 0 with one), and
    num_gpus_per_learner per learner (num_learners 0: one local learner in the algorithm's process).
    """
    from armillary.platform.rllib_config import resolved_resources

    res = resolved_resources(spec)
    learners = res["num_learners"]
    gpus_per_learner = res["num_gpus_per_learner"] or 0
    cpus = 1 + res["num_env_runners"] * res["num_cpus_per_env_runner"]
    if gpus_per_learner == 0:
        cpus += learners
    gpus = max(learners, 1) * gpus_per_learner if gpus_per_learner else 0

    trials = _num_trials(spec)
    if spec.resources.max_concurrent_trials:
        trials = min(trials, spec.resources.max_concurrent_trials)
    cpus_needed, gpus_needed = trials * cpus, trials * gpus

    gpu_workers = math.ceil(gpus_needed / GPUS_PER_GPU_WORKER - 1e-9) if gpus_needed else 0
    # GPU pods bring CPUs too; Ray places env runners there as readily as on CPU pods.
    cpu_left = cpus_needed - gpu_workers * float(GPU_WORKER_RESOURCES["cpu"])
    cpu_workers = max(0, math.ceil(cpu_left / float(CPU_WORKER_RESOURCES["cpu"]) - 1e-9))
    return ClusterShape(trials, cpus_needed, gpus_needed, cpu_workers, gpu_workers)


# ---------------------------------------------------------------------------------------------------
# Names and rendering

_DNS_SAFE = re.compile(r"[^a-z0-9-]+")


def k8s_name(text: str, *, suffix: str = "", limit: int = RAYJOB_NAME_LIMIT) -> str:
    """A DNS-1035 label (lower-case, starts with a letter, <= limit) from e.g. "ppo/cartpole"."""
    base = _DNS_SAFE.sub("-", text.lower()).strip("-")
    base = re.sub(r"-{2,}", "-", base)
    if not base or not base[0].isalpha():
        base = f"x-{base}".rstrip("-")
    room = limit - (len(suffix) + 1 if suffix else 0)
    base = base[:room].rstrip("-")
    return f"{base}-{suffix}" if suffix else base


def rayjob(
    spec: ExperimentSpec,
    *,
    image: str | None = None,
    namespace: str = NAMESPACE,
    existing_cluster: str | None = None,
) -> dict[str, Any]:
    """The RayJob object (a dict) for `spec`; see render_rayjob."""
    from armillary.platform.submit import entrypoint  # the one definition of the job command

    profile = spec.resources.profile
    if not profile.startswith("cluster-"):
        raise ValueError(
            f"resources.profile is {profile!r}; a Kubernetes job needs cluster-cpu or cluster-gpu "
            "(e.g. armillary render-k8s NAME --profile cluster-gpu)"
        )
    spec_hash = spec.spec_hash()[:8]
    labels = {
        **PART_OF,
        "app.kubernetes.io/managed-by": "armillary",
        "armillary.dev/experiment": k8s_name(spec.name, limit=63),
        "armillary.dev/profile": profile,
        "armillary.dev/spec-hash": spec_hash,
    }
    job_spec: dict[str, Any] = {
        "entrypoint": entrypoint(spec),
        "metadata": {"armillary.experiment": spec.name, "armillary.spec_hash": spec.spec_hash()},
        # A failed experiment is rerun by resubmitting: Tune already restarts crashed trials from
        # their checkpoints (spec.failure), and a blind retry of a bad spec would only burn GPUs.
        "backoffLimit": 0,
    }
    if existing_cluster:
        name = k8s_name(existing_cluster, limit=53)
        if name != existing_cluster:
            raise ValueError(f"existing cluster {existing_cluster!r} is not a RayCluster name (try {name!r})")
        job_spec["clusterSelector"] = {"ray.io/cluster": existing_cluster}
    else:
        shape = cluster_shape(spec)
        gpu = profile == "cluster-gpu"
        cpu_image = image or default_image("cpu")
        groups = [
            worker_group("cpu", cpu_image, replicas=shape.cpu_workers, min_replicas=0,
                         max_replicas=shape.max_cpu_workers),
        ]
        if gpu:
            # Starts with what the trials need (possibly none, if no learner asks for a GPU) and
            # never grows past it: GPUs are only ever added for real demand.
            groups.append(worker_group("gpu", image or default_image("gpu"), replicas=shape.gpu_workers,
                                       min_replicas=0, max_replicas=max(1, shape.gpu_workers)))
        job_spec.update({
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": JOB_TTL_AFTER_FINISHED_S,
            "preRunningDeadlineSeconds": JOB_PRE_RUNNING_DEADLINE_S,
            "rayClusterSpec": ray_cluster_spec(head_image=cpu_image, worker_groups=groups),
        })
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            # The hash makes a changed spec a new job, and re-applying the same spec a no-op.
            "name": k8s_name(spec.name, suffix=spec_hash),
            "namespace": namespace,
            "labels": labels,
        },
        "spec": job_spec,
    }


def render_rayjob(
    spec: ExperimentSpec,
    *,
    image: str | None = None,
    namespace: str = NAMESPACE,
    existing_cluster: str | None = None,
) -> str:
    """YAML (a stream of documents, for `kubectl apply -f -`) that runs `spec` as a KubeRay RayJob.

    spec: a resolved ExperimentSpec with a cluster-cpu or cluster-gpu profile. Its resources size the
        job's own cluster: a CPU worker group for the env runners and, for cluster-gpu, a GPU worker
        group with one pod per learner GPU of every concurrent trial.
    image: one image for every Ray pod (for cluster-gpu it must be the GPU variant); by default
        armillary/ray-cpu:<version> for the head and CPU workers and armillary/ray-gpu:<version> for
        GPU workers.
    existing_cluster: run on this RayCluster (e.g. "armillary", from k8s/base) instead of creating one.
    """
    job = rayjob(spec, image=image, namespace=namespace, existing_cluster=existing_cluster)
    header = (
        f"# Rendered by armillary.platform.k8s from experiment {spec.name!r} "
        f"(profile {spec.resources.profile}, spec hash {spec.spec_hash()}).\n"
        "# Needs k8s/base applied first: the runs PVC, the MLflow service and the Ray auth Secret.\n"
    )
    return header + dump_yaml([job])


class _KubeDumper(yaml.SafeDumper):
    """PyYAML (YAML 1.1) leaves a string like 1e234567 unquoted, but kubectl's YAML 1.2 parser reads it
    as a number, and a label value that is a number is rejected. Quote such strings."""


_NUMBER_LIKE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _quote_number_like(dumper: yaml.SafeDumper, value: str):
    style = "'" if _NUMBER_LIKE.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_KubeDumper.add_representer(str, _quote_number_like)


def dump_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(copy.deepcopy(documents), Dumper=_KubeDumper, sort_keys=False, width=1_000_000,
                         explicit_start=True)


# ---------------------------------------------------------------------------------------------------
# Grafana dashboards ConfigMap (for the Grafana sidecar)

DASHBOARDS_CONFIGMAP = "armillary-grafana-dashboards"


def dashboards_configmap(dashboards: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap holding Grafana dashboard JSON files (file name -> text) for Grafana's sidecar,
    which loads every ConfigMap labelled grafana_dashboard=1 (kube-prometheus-stack's default)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": DASHBOARDS_CONFIGMAP,
            "labels": {**PART_OF, "grafana_dashboard": "1"},
            # Read by the sidecar when folderAnnotation is set to grafana_folder.
            "annotations": {"grafana_folder": "Armillary"},
        },
        "data": {name: dashboards[name] for name in sorted(dashboards)},
    }


class _LiteralDumper(_KubeDumper):
    """Also writes multi-line strings as `|` blocks, so embedded JSON stays readable in the ConfigMap."""


def _literal_blocks(dumper: yaml.SafeDumper, value: str):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return _quote_number_like(dumper, value)


_LiteralDumper.add_representer(str, _literal_blocks)


def render_dashboards_configmap(dashboards: dict[str, str]) -> str:
    header = (
        "# Generated from dashboards/*.json; regenerate after editing a dashboard:\n"
        "#   python -m armillary.platform.k8s dashboards-configmap dashboards/*.json "
        "> dashboards/grafana-dashboards-configmap.yaml\n"
        "# Apply it in Grafana's namespace (or one its sidecar searches): see dashboards/README.md.\n"
    )
    body = yaml.dump(dashboards_configmap(dashboards), Dumper=_LiteralDumper, sort_keys=False, width=1_000_000)
    return header + body


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m armillary.platform.k8s", description="Kubernetes rendering helpers.")
    sub = parser.add_subparsers(dest="command", required=True)
    cm = sub.add_parser("dashboards-configmap", help="print the Grafana sidecar ConfigMap for these dashboard files")
    cm.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dashboards-configmap":
        sys.stdout.write(render_dashboards_configmap({p.name: p.read_text() for p in args.files}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
