"""The Kubernetes side, checked offline: no cluster can run here, so every manifest is validated
against the real schemas (KubeRay v1.7 CRDs, core kinds, Prometheus operator kinds) by
../shared/k8s-schemas/validate.py, and everything else a cluster would catch late is checked here:

* every file under k8s/, every kustomize overlay (built), and the RayJob rendered from every preset
  in both cluster profiles validate — and a deliberately broken render does not;
* the rendered RayJob's pod templates are the ones in k8s/ (one description of an Armillary pod);
* KubeRay controller rules the validator does not implement (autoscaler v2, TTL, clusterSelector);
* no secret value appears in any manifest, and every Secret they reference is documented;
* Ray versions agree (installed, pyproject, Dockerfile, manifests); the Dockerfile installs what the
  README installs (pyproject.toml is the one list of dependencies).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from armillary.platform import k8s

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
SCHEMAS = REPO.parent / "shared" / "k8s-schemas"
VALIDATE = SCHEMAS / "validate.py"
DOCKERFILE = REPO / "docker" / "Dockerfile"
CORE_VERSIONS = ("v1.31.0", "v1.37.0")  # the oldest and newest Kubernetes the schemas cover

needs_validator = pytest.mark.skipif(
    not VALIDATE.is_file(),
    reason=f"offline Kubernetes schemas not found at {SCHEMAS} (shared/k8s-schemas beside the repository)",
)


# ---------------------------------------------------------------------------------------------------
# Helpers: the validator, a tiny kustomize, manifests


def run_validator(paths: list[Path], *extra: str) -> tuple[int, str, int]:
    """(exit status, output, documents checked) of validate.py on paths."""
    proc = subprocess.run([sys.executable, str(VALIDATE), *extra, *map(str, paths)],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    match = re.search(r"(\d+) document\(s\) checked, (\d+) invalid", out)
    return proc.returncode, out, int(match.group(1)) if match else -1


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest_files() -> list[Path]:
    """Every manifest under k8s/ (kustomization files are build instructions, not objects)."""
    return sorted(p for p in K8S.rglob("*.y*ml") if p.name != "kustomization.yaml")


def kustomize_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


# The kustomize features this repository uses, and nothing else: building fails loudly on any other
# field, so an overlay can never use a feature this resolver would silently get wrong. Where kubectl
# is installed, test_kustomize_resolver_matches_kubectl compares it with the real kustomize.
_KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "patches"}
_JSON_PATCH_OPS = {"add", "remove", "replace", "test"}


def _pointer(path: str) -> list[str]:
    assert path.startswith("/"), path
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _walk(doc, parts):
    node = doc
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def apply_json_patch(doc: dict, ops: list[dict]) -> None:
    """RFC 6902, for the operations in _JSON_PATCH_OPS."""
    for op in ops:
        kind = op["op"]
        assert kind in _JSON_PATCH_OPS, f"JSON patch op {kind!r} not supported by this resolver"
        *parent_parts, last = _pointer(op["path"])
        parent = _walk(doc, parent_parts)
        if kind == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent[last]
            assert value == op["value"], f"JSON patch test failed at {op['path']}: {value!r} != {op['value']!r}"
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            if kind == "add":
                parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
            else:
                parent[int(last)] = copy.deepcopy(op["value"])
        else:
            if kind == "replace":
                assert last in parent, f"JSON patch replace of missing {op['path']}"
            parent[last] = copy.deepcopy(op["value"])


def _targets(doc: dict, target: dict) -> bool:
    group, _, version = doc["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": doc["kind"], "name": doc["metadata"]["name"],
              "namespace": doc["metadata"].get("namespace")}
    unknown = set(target) - set(wanted)
    assert not unknown, f"patch target fields {unknown} not supported by this resolver"
    return all(wanted[key] == value for key, value in target.items())


def kustomize_build(directory: Path) -> list[dict]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KUSTOMIZATION_FIELDS
    assert not unknown, f"{directory}: kustomization fields {sorted(unknown)} not supported by this resolver"
    docs: list[dict] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        docs += kustomize_build(path) if path.is_dir() else load_docs(path)
    for patch in kustomization.get("patches", []):
        assert set(patch) <= {"target", "patch"}, f"{directory}: patch fields {sorted(patch)} not supported"
        matched = [doc for doc in docs if _targets(doc, patch["target"])]
        assert matched, f"{directory}: patch target {patch['target']} matches no resource"
        for doc in matched:
            apply_json_patch(doc, yaml.safe_load(patch["patch"]))
    return docs


def _key(doc: dict) -> tuple:
    return doc["apiVersion"], doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def find(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def cluster_spec_of(doc: dict) -> dict | None:
    """The RayCluster spec inside a RayCluster, RayJob (unless it selects a cluster) or RayService."""
    spec = doc.get("spec") or {}
    if doc["kind"] == "RayCluster":
        return spec
    return {"RayJob": spec.get("rayClusterSpec"), "RayService": spec.get("rayClusterConfig")}.get(doc["kind"])


# ---------------------------------------------------------------------------------------------------
# Specs: every registered preset in both cluster profiles


def _preset_names() -> list[str]:
    from armillary.platform import presets

    return presets.experiment_names()


def cluster_spec(name: str, profile: str, *overrides: str):
    from armillary.platform.spec import load_spec

    extra = ["resources.num_gpus_per_learner=0"] if profile == "cluster-cpu" else []
    return load_spec(name, [f"resources.profile={profile}", *extra, *overrides])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(preset, variant) -> file with its rendered RayJob; variants: both profiles and an existing cluster."""
    folder = tmp_path_factory.mktemp("rendered")
    files = {}
    for name in _preset_names():
        for variant in ("cluster-cpu", "cluster-gpu", "existing"):
            spec = cluster_spec(name, "cluster-gpu" if variant == "existing" else variant)
            text = k8s.render_rayjob(spec, existing_cluster=k8s.CLUSTER_NAME if variant == "existing" else None)
            path = folder / f"{k8s.k8s_name(name)}--{variant}.yaml"
            path.write_text(text)
            files[(name, variant)] = path
    return files


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[Path, Path]:
    """kustomization directory -> file with its built output."""
    folder = tmp_path_factory.mktemp("kustomize")
    out = {}
    for directory in kustomize_dirs():
        path = folder / (str(directory.relative_to(K8S)).replace("/", "--") + ".yaml")
        path.write_text(yaml.safe_dump_all(kustomize_build(directory), sort_keys=False))
        out[directory] = path
    return out


def all_documents(rendered, built) -> list[tuple[str, dict]]:
    """(where, document) for every object a user can apply: files, builds and renders."""
    docs = []
    for path in [*manifest_files(), *built.values(), *rendered.values(), REPO / "dashboards" / "grafana-dashboards-configmap.yaml"]:
        docs += [(str(path), doc) for doc in load_docs(path)]
    return docs


# ---------------------------------------------------------------------------------------------------
# Schema validation


@needs_validator
@pytest.mark.parametrize("core", CORE_VERSIONS)
def test_every_manifest_file_validates(core):
    files = manifest_files() + [REPO / "dashboards" / "grafana-dashboards-configmap.yaml"]
    status, out, checked = run_validator(files, "--k8s-version", core)
    assert status == 0, out
    assert checked == sum(len(load_docs(f)) for f in files), out  # every document was looked at


@needs_validator
@pytest.mark.parametrize("core", CORE_VERSIONS)
def test_every_kustomization_builds_and_validates(built, core):
    assert {d.relative_to(K8S).as_posix() for d in built} >= {"base", "overlays/cpu-only", "overlays/gpu", "reward-service"}
    status, out, checked = run_validator(list(built.values()), "--k8s-version", core)
    assert status == 0, out
    assert checked == sum(len(load_docs(p)) for p in built.values()), out


@needs_validator
@pytest.mark.parametrize("core", CORE_VERSIONS)
def test_rayjob_of_every_preset_validates(rendered, core):
    assert len(rendered) == 3 * len(_preset_names()) > 0
    status, out, checked = run_validator(list(rendered.values()), "--k8s-version", core)
    assert status == 0, out
    assert checked == len(rendered), out


def _break_typo(job):  # a misspelt field inside the pod template
    container = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["volumeMount"] = container.pop("volumeMounts")


def _break_type(job):  # a string where the schema wants an integer
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"] = "ten"


def _break_gpu_limit(job):  # a GPU group that would never get a GPU
    gpu = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]
    for table in gpu["template"]["spec"]["containers"][0]["resources"].values():
        del table["nvidia.com/gpu"]


def _break_rayjob_field(job):  # a field RayJob does not have
    job["spec"]["ttlSecondsAfterFinish"] = job["spec"].pop("ttlSecondsAfterFinished")


BREAKAGES = {  # name: (how, what the validator must name)
    "typo": (_break_typo, "volumeMount"),
    "type": (_break_type, "maxReplicas"),
    "gpu-limit": (_break_gpu_limit, "nvidia.com/gpu"),
    "rayjob-field": (_break_rayjob_field, "ttlSecondsAfterFinish"),
}


@needs_validator
def test_validator_rejects_broken_renders(tmp_path):
    """Validation cannot pass vacuously: the same render passes, and each breakage of it fails, naming
    the broken field (one validator run over all of them)."""
    job = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"))
    files = {"good": tmp_path / "good.yaml"}
    files["good"].write_text(k8s.dump_yaml([job]))
    for name, (breakage, _) in BREAKAGES.items():
        broken = copy.deepcopy(job)
        breakage(broken)
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(k8s.dump_yaml([broken]))
    status, out, checked = run_validator(list(files.values()))
    assert status == 1 and checked == len(files), out
    reports: dict[str, list[str]] = {}  # file stem -> its OK/FAIL line and the error lines below it
    current = None
    for line in out.splitlines():
        if line.startswith(("OK ", "FAIL ")):
            current = reports.setdefault(Path(line.split()[1].split("#")[0]).stem, [])
        if current is not None:
            current.append(line)
    assert reports["good"][0].startswith("OK"), out
    for name, (_, expected) in BREAKAGES.items():
        report = "\n".join(reports[name])
        assert report.startswith("FAIL") and expected in report, report


def test_kustomize_resolver_matches_kubectl(built):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: overlays were built by this file's resolver only")
    for directory, path in built.items():
        proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        real = {_key(d): d for d in yaml.safe_load_all(proc.stdout) if d}
        ours = {_key(d): d for d in load_docs(path)}
        assert real == ours, directory


def test_kustomize_resolver_refuses_what_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamespace: other\n")
    with pytest.raises(AssertionError, match="not supported"):
        kustomize_build(tmp_path)


# ---------------------------------------------------------------------------------------------------
# What the RayJob says


def _groups(job: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]}


def test_gpu_profile_gets_a_gpu_group_sized_to_its_learners():
    spec = cluster_spec("ppo/cartpole", "cluster-gpu", "resources.num_learners=2", "seeds=[0]")
    job = k8s.rayjob(spec)
    gpu = _groups(job)["gpu-workers"]
    pod = gpu["template"]["spec"]
    assert gpu["replicas"] == gpu["maxReplicas"] == 2 and gpu["minReplicas"] == 0
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["containers"][0]["image"] == k8s.default_image("gpu")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["idleTimeoutSeconds"] == k8s.GPU_IDLE_TIMEOUT_S
    # Three seeds at once need three learners' GPUs.
    assert _groups(k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu")))["gpu-workers"]["replicas"] == 3


def test_cpu_profile_has_no_gpu_group():
    job = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-cpu"))
    assert list(_groups(job)) == ["cpu-workers"]
    assert "nvidia.com/gpu" not in json.dumps(job)


def test_cpu_group_fits_the_trials():
    spec = cluster_spec("ppo/cartpole", "cluster-cpu", "resources.num_env_runners=20", "seeds=[0,1]")
    shape = k8s.cluster_shape(spec)
    # Per trial: 1 (algorithm) + 20 runners + 1 CPU learner.
    assert shape.cpus_needed == 2 * 22
    cpu = _groups(k8s.rayjob(spec))["cpu-workers"]
    per_pod = float(k8s.CPU_WORKER_RESOURCES["cpu"])
    assert cpu["replicas"] * per_pod >= shape.cpus_needed > (cpu["replicas"] - 1) * per_pod
    assert cpu["maxReplicas"] >= cpu["replicas"] and cpu["minReplicas"] == 0


def test_ephemeral_cluster_is_cleaned_up():
    job = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"))["spec"]
    assert job["shutdownAfterJobFinishes"] is True
    assert 0 < job["ttlSecondsAfterFinished"] <= 600
    assert job["preRunningDeadlineSeconds"] > 0
    assert job["rayClusterSpec"]["enableInTreeAutoscaling"] is True
    assert all(g["minReplicas"] == 0 for g in job["rayClusterSpec"]["workerGroupSpecs"])


def test_existing_cluster_job_only_selects_it():
    job = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"), existing_cluster="armillary")["spec"]
    assert job["clusterSelector"] == {"ray.io/cluster": "armillary"}
    assert "rayClusterSpec" not in job and "shutdownAfterJobFinishes" not in job
    with pytest.raises(ValueError, match="not a RayCluster name"):
        k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"), existing_cluster="Not_A_Name")


def test_local_profiles_are_refused():
    from armillary.platform.spec import load_spec

    with pytest.raises(ValueError, match="cluster-cpu or cluster-gpu"):
        k8s.render_rayjob(load_spec("ppo/cartpole", ["resources.profile=local-cpu"]))


def test_entrypoint_survives_both_shells():
    """KubeRay's submitter runs `bash -c "... ray job submit -- <entrypoint>"`; `ray job submit`
    shlex-joins its argv and Ray runs that through a shell again. The spec must come out whole."""
    spec = cluster_spec("ppo/cartpole", "cluster-gpu", "description=it's \"quoted\" $HOME `x`")
    entrypoint = k8s.rayjob(spec)["spec"]["entrypoint"]

    def bash_argv(command: str) -> list[str]:
        out = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True, text=True, check=True)
        return out.stdout.split("\0")[:-1]

    first = bash_argv(entrypoint)  # the submitter's shell
    second = bash_argv(shlex.join(first))  # Ray's shell, after `ray job submit` joined the argv
    assert second[:4] == ["python", "-m", "armillary.jobs.run_experiment", "--spec-json"]
    assert json.loads(second[4]) == spec.to_dict()


@pytest.mark.parametrize("text, expected", [
    ("ppo/cartpole", "ppo-cartpole"),
    ("disdain/four-rooms", "disdain-four-rooms"),
    ("9lives/x", "x-9lives-x"),
    ("a" * 80, "a" * 47),
])
def test_k8s_names_are_dns_1035_labels(text, expected):
    name = k8s.k8s_name(text)
    assert name == expected and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 47
    assert len(k8s.k8s_name("x" * 80, suffix="0123abcd")) == 47


def test_rayjob_name_changes_with_the_spec():
    one = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"))["metadata"]["name"]
    same = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"))["metadata"]["name"]
    other = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu", "seeds=[7]"))["metadata"]["name"]
    assert one == same != other and one.startswith("ppo-cartpole-")


# ---------------------------------------------------------------------------------------------------
# One description of a Ray pod: the renderer's templates are the ones in k8s/


def test_rendered_cluster_matches_the_static_cluster(built):
    static = find(load_docs(built[K8S / "overlays" / "gpu"]), "RayCluster", k8s.CLUSTER_NAME)["spec"]
    job = k8s.rayjob(cluster_spec("ppo/cartpole", "cluster-gpu"))["spec"]["rayClusterSpec"]
    for field in ("rayVersion", "authOptions", "enableInTreeAutoscaling", "autoscalerOptions"):
        assert job[field] == static[field], field
    assert job["headGroupSpec"] == static["headGroupSpec"]
    static_groups = {g["groupName"]: g for g in static["workerGroupSpecs"]}
    for name, group in _groups({"spec": {"rayClusterSpec": job}}).items():
        sizes = ("replicas", "minReplicas", "maxReplicas")  # the only fields allowed to differ
        assert {k: v for k, v in group.items() if k not in sizes} == \
               {k: v for k, v in static_groups[name].items() if k not in sizes}, name
    assert set(static_groups) == {"cpu-workers", "gpu-workers"}


def test_cpu_only_overlay_has_no_gpu_and_gpu_overlay_scales_gpus_to_zero(built):
    cpu = find(load_docs(built[K8S / "overlays" / "cpu-only"]), "RayCluster", k8s.CLUSTER_NAME)["spec"]
    assert "nvidia.com/gpu" not in json.dumps(cpu)
    gpu = find(load_docs(built[K8S / "overlays" / "gpu"]), "RayCluster", k8s.CLUSTER_NAME)["spec"]
    (group,) = [g for g in gpu["workerGroupSpecs"] if g["groupName"] == "gpu-workers"]
    assert group["minReplicas"] == 0 and group["idleTimeoutSeconds"] > 0


def test_ray_pods_share_the_runs_volume_and_export_metrics(rendered, built):
    runs_pvc = find(load_docs(K8S / "base" / "storage.yaml"), "PersistentVolumeClaim", k8s.RUNS_PVC)
    assert runs_pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for where, doc in all_documents(rendered, built):
        spec = cluster_spec_of(doc)
        if not spec or doc["kind"] == "RayService":  # the reward service keeps no runs
            continue
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            pod = group["template"]["spec"]
            container = pod["containers"][0]
            assert {"name": "runs", "persistentVolumeClaim": {"claimName": k8s.RUNS_PVC}} in pod["volumes"], where
            assert {"name": "runs", "mountPath": k8s.RUNS_MOUNT} in container["volumeMounts"], where
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["ARMILLARY_RUNS_DIR"].startswith(k8s.RUNS_MOUNT + "/"), where
            assert env["MLFLOW_TRACKING_URI"] == k8s.MLFLOW_TRACKING_URI, where
            assert {"name": "metrics", "containerPort": 8080} in container["ports"], where


def test_mlflow_uri_points_at_the_mlflow_service():
    service = find(load_docs(K8S / "base" / "mlflow-server.yaml"), "Service", "armillary-mlflow")
    (port,) = service["spec"]["ports"]
    assert k8s.MLFLOW_TRACKING_URI == f"http://{service['metadata']['name']}:{port['port']}"
    deployment = find(load_docs(K8S / "base" / "mlflow-server.yaml"), "Deployment", "armillary-mlflow")
    args = " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--host=0.0.0.0" in args and "--backend-store-uri=postgresql+psycopg2://armillary-mlflow-postgres:5432/" in args


# ---------------------------------------------------------------------------------------------------
# KubeRay controller rules (ray-operator/controllers/ray/utils/validation.go) the validator lacks


def test_kuberay_controller_rules(rendered, built):
    checked = 0
    for where, doc in all_documents(rendered, built):
        spec = cluster_spec_of(doc)
        if doc["kind"] == "RayJob":
            job = doc["spec"]
            if job.get("clusterSelector"):
                assert job["clusterSelector"].get("ray.io/cluster"), where
                assert not job.get("shutdownAfterJobFinishes") and not job.get("suspend"), where
                assert not job.get("backoffLimit"), where
            if job.get("ttlSecondsAfterFinished"):
                assert job.get("shutdownAfterJobFinishes") is True, where  # TTL only works with shutdown
        if not spec:
            continue
        checked += doc["kind"] == "RayJob"
        v2 = (spec.get("autoscalerOptions") or {}).get("version") == "v2"
        for group in spec["workerGroupSpecs"]:
            if "idleTimeoutSeconds" in group:
                assert v2, f"{where}: per-group idleTimeoutSeconds needs autoscalerOptions.version v2"
        if v2:
            for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
                assert group["template"]["spec"].get("restartPolicy") in (None, "Never"), where
        if (spec.get("authOptions") or {}).get("mode") == "token":
            assert tuple(map(int, spec["rayVersion"].split("."))) >= (2, 52, 0), where
            assert not spec["authOptions"].get("enableK8sTokenAuth"), f"{where}: unsupported for RayJob/RayService"
    assert checked == sum(variant != "existing" for _, variant in rendered)  # every job's own cluster


# ---------------------------------------------------------------------------------------------------
# Secrets

_SECRETISH = re.compile(r"pass(word)?|passwd|secret|token|api[_-]?key|credential", re.I)
_CREDENTIALS_IN_URI = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)


def _secret_problems(node, path="") -> list[str]:
    problems = []
    if isinstance(node, dict):
        if "name" in node and "value" in node and _SECRETISH.search(str(node["name"])):
            problems.append(f"{path}: env var {node['name']} has a literal value (use valueFrom.secretKeyRef)")
        for key, value in node.items():
            if _SECRETISH.search(str(key)) and isinstance(value, (str, int)) and key not in ("secretName",):
                problems.append(f"{path}.{key}: looks like a secret value")
            problems += _secret_problems(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            problems += _secret_problems(item, f"{path}[{i}]")
    elif isinstance(node, str) and _CREDENTIALS_IN_URI.search(node):
        problems.append(f"{path}: credentials in a URI")
    return problems


def _referenced_secrets(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("secretKeyRef"), dict):
            found.add(node["secretKeyRef"]["name"])
        if isinstance(node.get("authOptions"), dict) and node["authOptions"].get("secretName"):
            found.add(node["authOptions"]["secretName"])
        for value in node.values():
            found |= _referenced_secrets(value)
    elif isinstance(node, list):
        for item in node:
            found |= _referenced_secrets(item)
    return found


def test_no_secret_values_in_any_manifest(rendered, built):
    referenced = set()
    for where, doc in all_documents(rendered, built):
        assert doc["kind"] != "Secret", f"{where}: Secrets are created by the user, never shipped"
        assert not _secret_problems(doc), f"{where}: {_secret_problems(doc)}"
        referenced |= _referenced_secrets(doc)
    assert referenced == {"armillary-ray-auth", "armillary-mlflow-db"}
    readme = (K8S / "README.md").read_text()
    for name in referenced:  # every Secret a manifest needs has its `kubectl create secret` line
        assert re.search(rf"kubectl .*create secret generic {name}\b", readme), name


def test_secret_scan_is_not_vacuous():
    assert _secret_problems({"env": [{"name": "PGPASSWORD", "value": "hunter2"}]})
    assert _secret_problems({"args": ["--backend-store-uri=postgresql://mlflow:hunter2@db:5432/mlflow"]})
    assert _secret_problems({"stringData": {"auth_token": "abc"}})
    assert not _secret_problems({"env": [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}]})


# ---------------------------------------------------------------------------------------------------
# Versions and the image


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pin(package: str) -> str:
    (req,) = [d for d in _pyproject()["project"]["dependencies"] if re.split(r"[^A-Za-z0-9._-]", d)[0] == package]
    return req.split("==")[1].strip()


def test_ray_versions_agree(rendered, built):
    import ray

    assert ray.__version__ == k8s.RAY_VERSION == _pin("ray")
    bases = re.findall(r"^FROM rayproject/ray:(\S+)", DOCKERFILE.read_text(), re.M)
    assert bases and all(tag.startswith(f"{k8s.RAY_VERSION}-py311-") for tag in bases), bases
    versions = {cluster_spec_of(doc)["rayVersion"] for _, doc in all_documents(rendered, built) if cluster_spec_of(doc)}
    assert versions == {k8s.RAY_VERSION}


def test_image_tags_are_the_package_version(rendered, built):
    from importlib import metadata

    version = metadata.version("armillary")
    images = set(re.findall(r"image: (armillary/\S+)", "\n".join(p.read_text() for p in manifest_files())))
    images |= set(re.findall(r"image: (armillary/\S+)", "\n".join(p.read_text() for p in rendered.values())))
    assert images == {f"armillary/ray-cpu:{version}", f"armillary/ray-gpu:{version}", f"armillary/mlflow:{version}"}
    for image in images:  # every image has its build command in the Dockerfile's header
        assert f"-t {image} ." in DOCKERFILE.read_text(), image


def _dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its RUN commands (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"FROM \S+ AS (\S+)", line):
            current = stages.setdefault(m.group(1), [])
        elif line.startswith("RUN ") and current is not None:
            current.append(line[4:])
    return stages


_SHELL_SEPARATORS = {"&&", "||", ";", "|", "(", ")", "if", "then", "else", "fi", "do", "done"}


def _pip_installs(command: str) -> list[list[str]]:
    """Arguments of every `pip install` in a shell command line (simple commands split on && ; etc.)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in _SHELL_SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    installs = []
    for words in commands:
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # leading VAR=value assignments
        if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
            installs.append(words[words.index("install") + 1:])
    return installs


_OPTIONS_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "--index-url", "-i", "--extra-index-url", "-f",
                       "--find-links"}


def _requirements(args: list[str]) -> list[str]:
    """The positional requirements of a pip install (options and their values dropped)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-") and not arg.startswith("$"):
            out.append(arg)
    return out


def _readme_pip_installs() -> list[list[str]]:
    readme = REPO / "README.md"
    if not readme.is_file():
        pytest.skip("README.md not written yet: nothing to compare the Dockerfile's install steps with")
    # Every fenced block, whatever its language (a skipped ```yaml fence would pair the rest up wrongly), then the shell ones.
    blocks = re.findall(r"```(\w*)\n(.*?)```", readme.read_text(), re.S)
    installs = []
    for language, block in blocks:
        if language not in ("", "bash", "sh", "shell", "console"):
            continue
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            installs += _pip_installs(line.lstrip("$ ").strip())
    return installs


def test_dockerfile_installs_what_the_readme_installs():
    """One source of truth: both install the project from its pyproject.toml, and anything else
    the README installs first is a pyproject pin (e.g. the CPU torch wheel), not a second list."""
    readme = _readme_pip_installs()
    project_installs = [args for args in readme if any(r.split("[")[0].strip("\"'") == "." for r in _requirements(args))]
    assert project_installs, f"README's setup never installs the project itself (pip install -e \".[test]\"): {readme}"
    pins = {re.split(r"[^A-Za-z0-9._-]", d)[0].lower(): d for d in _pyproject()["project"]["dependencies"]}
    no_deps = _pyproject()["tool"]["armillary"]["no-deps"]  # files used, declared dependencies not needed
    readme_no_deps = []
    for args in readme:
        for req in _requirements(args):
            if req in no_deps:
                assert "--no-deps" in args, f"README installs {req!r} without --no-deps"
                readme_no_deps.append(req)
            elif req.split("[")[0].strip("\"'") != ".":
                name = re.split(r"[^A-Za-z0-9._-]", req)[0].lower()
                assert pins.get(name) == req, f"README installs {req!r}, which is not pyproject's {pins.get(name)!r}"
    assert sorted(readme_no_deps) == sorted(no_deps), "the README's set-up must install every [tool.armillary] no-deps"

    stages = _dockerfile_stages()
    ray_installs = [args for run in stages["ray"] for args in _pip_installs(run)]
    project = [args for args in ray_installs if _requirements(args) == ["/tmp/armillary-src"]]
    others = [args for args in ray_installs if args not in project]
    assert project and all("--no-deps" in args for args in others), ray_installs
    assert sorted(req for args in others for req in _requirements(args)) == sorted(no_deps), others
    assert "COPY --chown=ray:users . /tmp/armillary-src" in DOCKERFILE.read_text()
    assert not any("-e" in args or "--editable" in args for args in ray_installs)


def test_mlflow_image_installs_pyprojects_mlflow_and_a_driver(tmp_path):
    (run,) = [r for r in _dockerfile_stages()["mlflow"] if "pip install" in r]
    (args,) = _pip_installs(run)
    assert _requirements(args) == ["psycopg2-binary==2.9.13"] and args[args.index("-r") + 1] == "/tmp/mlflow-requirement.txt"
    # Run the Dockerfile's own one-liner on the real pyproject.toml.
    code = re.search(r'python -c "(.*?)" > /tmp/mlflow-requirement.txt', run).group(1)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    code = code.replace("/tmp/pyproject.toml", str(tmp_path / "pyproject.toml"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"mlflow=={_pin('mlflow')}"]


def test_yaml_quotes_strings_kubectl_would_read_as_numbers():
    # A spec hash such as 1e234567 is a string to PyYAML but a float to kubectl's YAML parser.
    text = k8s.dump_yaml([{"metadata": {"labels": {"hash": "1e234567", "other": "04abfbfe"}}}])
    assert yaml.safe_load(text)["metadata"]["labels"]["hash"] == "1e234567"
    assert "hash: '1e234567'" in text


def test_rayservice_imports_the_projects_serve_app():
    """The RayService's serveConfigV2 names an importable application builder, and its args are a valid config."""
    import importlib

    (service,) = [d for d in yaml.safe_load_all((K8S / "reward-service" / "rayservice.yaml").read_text()) if d]
    (application,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    module, _, attribute = application["import_path"].partition(":")
    builder = getattr(importlib.import_module(module), attribute)
    from ray.serve import Application

    assert isinstance(builder(application["args"]), Application)
    with pytest.raises(Exception, match="max_batch_sise"):
        builder({**application["args"], "max_batch_sise": 8})  # a typo fails the deploy, naming the field


def test_readme_ports_table_lists_exactly_the_ports_the_ray_pods_open():
    """k8s/README.md says which ports the Ray pods open and why (issue 18's exposure class): the table must name every
    containerPort of every Ray pod in base and the overlays, and no port that none opens."""
    readme = (K8S / "README.md").read_text()
    section = readme.split("## Ports the Ray pods open, and why", 1)[1].split("\n## ", 1)[0]
    documented = {int(port) for row in section.splitlines() if row.startswith("| ") and row[2].isdigit()
                  for port in re.findall(r"\d+", row.split("|")[1])}
    opened = set()
    for directory in [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]:
        for doc in kustomize_build(directory):
            if doc["kind"] != "RayCluster":
                continue
            groups = [doc["spec"]["headGroupSpec"], *doc["spec"].get("workerGroupSpecs", [])]
            for group in groups:
                for container in group["template"]["spec"]["containers"]:
                    opened |= {port["containerPort"] for port in container.get("ports", [])}
    assert opened and documented == opened, (sorted(documented), sorted(opened))
