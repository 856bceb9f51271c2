"""Grafana dashboards: valid dashboard JSON, provisioned by exactly one ConfigMap, and querying only
metrics (and labels) that really exist — checked by scraping Ray's Prometheus endpoint during a real
local smoke experiment. The alert rules in k8s/ are held to the same standard.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from armillary.platform import k8s

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = REPO / "dashboards"
CONFIGMAP = DASHBOARDS / "grafana-dashboards-configmap.yaml"

# The method figures the platform exports as ray_armillary_algorithm_metric{name=...}
# (STYLE.md's `<algorithm>/<name>` convention); the dashboards' `name` selectors must match them.
ALGORITHM_FIGURES = (
    "disdain/effective_skills", "disdain/bonus_mean",
    "domino/lagrange/1", "domino/constraint_margin/1",
    "score/acc_t1", "score/acc_t2", "score/delta_t1_t2",
)

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s", "__name"}


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows keep their panels inside
    return out


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, template variable query and alert rule."""
    found = []
    for path in dashboard_files():
        dashboard = load(path)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
        for var in dashboard["templating"]["list"]:
            if var["type"] == "query":
                match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
                assert match, f"{path.name}: variable {var['name']}: expected label_values(selector, label)"
                found.append((f"{path.name}: variable {var['name']}", match.group(1)))
    for path in sorted((REPO / "k8s").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "PrometheusRule":
                for group in doc["spec"]["groups"]:
                    for rule in group["rules"]:
                        found.append((f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def variable_labels() -> list[tuple[str, str, str]]:
    """(where, metric, label) for every label a template variable lists values of."""
    out = []
    for path in dashboard_files():
        for var in load(path)["templating"]["list"]:
            if var["type"] == "query":
                selector, label = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"]).groups()
                (metric,) = metric_names(selector)
                out.append((f"{path.name}: variable {var['name']}", metric, label))
    return out


# ---------------------------------------------------------------------------------------------------
# PromQL, as far as the checks need it


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
             "unless", "inf", "nan", "start", "end"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, aggregations,
    keywords, label names, durations or Grafana variables."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        if word.lower() in _KEYWORDS or re.match(r"\s*\(", text[match.end():]):
            continue  # a keyword, or a function / aggregation call
        names.add(word)
    return names


_SELECTOR = re.compile(r'([A-Za-z_:][A-Za-z0-9_:]*)\s*\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, op, value)]) for every `metric{...}` in an expression."""
    return [(m.group(1), _MATCHER.findall(m.group(2))) for m in _SELECTOR.finditer(expr)]


@pytest.mark.parametrize("expr, names", [
    ('sum by (experiment, trial) (rate(ray_x_total{a="b", c=~"$v"}[5m]))', {"ray_x_total"}),
    ("histogram_quantile(0.9, sum by (le) (rate(ray_lat_bucket[$__rate_interval])))", {"ray_lat_bucket"}),
    ("sum(a) / on() (sum(b) or vector(0))", {"a", "b"}),
    ("max(x offset 1h) > bool 1e3", {"x"}),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
    ("count(ray_a) and ignoring(ip) group_left(name) ray_b unless ray_c * 1024", {"ray_a", "ray_b", "ray_c"}),
    ('ray_node_gram_used{ip=~"10.0.0.1:.*"} * 1024 * 1024', {"ray_node_gram_used"}),
])
def test_metric_name_extraction(expr, names):
    assert metric_names(expr) == names


def test_selector_extraction():
    assert selectors('sum by (a) (m{name="x/y", trial=~"$trial"}) / n') == [("m", [("name", "=", "x/y"), ("trial", "=~", "$trial")])]


# ---------------------------------------------------------------------------------------------------
# The dashboard JSON


def test_dashboards_are_grafana_dashboards():
    files = dashboard_files()
    assert {p.name for p in files} >= {"armillary-training.json", "armillary-cluster.json"}
    uids = [load(p)["uid"] for p in files]
    assert len(set(uids)) == len(uids) and all(len(u) <= 40 for u in uids)
    for path in files:
        dashboard = load(path)
        assert isinstance(dashboard["title"], str) and isinstance(dashboard["schemaVersion"], int), path.name
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        assert {"datasource"} <= variables, path.name
        ids = [p["id"] for p in panels(dashboard)]
        assert len(set(ids)) == len(ids), f"{path.name}: duplicate panel ids"
        for panel in panels(dashboard):
            where = f"{path.name}: {panel.get('title')}"
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            if panel["type"] == "row":
                continue
            assert panel["type"] in {"timeseries", "stat", "gauge", "table", "bargauge"}, where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], f"{where}: no targets"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs), where
            for target in panel["targets"]:
                expr = target["expr"]
                assert expr.strip() and metric_names(expr), f"{where}: empty query"
                used = set(re.findall(r"\$\{?(\w+)\}?", expr))
                assert used <= variables | GRAFANA_BUILTINS, f"{where}: undefined variables {used - variables}"
                bare = _STRING.sub('""', expr)
                for open_, close in ("()", "{}", "[]"):
                    assert bare.count(open_) == bare.count(close), f"{where}: unbalanced {open_}{close}"


def test_the_methods_figures_have_panels():
    exprs = " ".join(expr for _, expr in queries())
    for figure in ALGORITHM_FIGURES:
        assert any(re.fullmatch(value, figure) if op == "=~" else value == figure
                   for metric, matchers in selectors(exprs) if metric == "ray_armillary_algorithm_metric"
                   for label, op, value in matchers if label == "name" and "$" not in value), figure


def test_name_selectors_match_real_figure_names():
    """Every `name` a panel selects is one of the method figures (no typo'd figure name)."""
    for where, expr in queries():
        for metric, matchers in selectors(expr):
            for label, op, value in matchers:
                if metric == "ray_armillary_algorithm_metric" and label == "name" and "$" not in value:
                    hits = [f for f in ALGORITHM_FIGURES if (re.fullmatch(value, f) if op == "=~" else value == f)]
                    assert hits, f"{where}: name {op} {value!r} matches no figure"


@pytest.mark.parametrize("figure", ALGORITHM_FIGURES)
def test_method_figures_exist_in_their_algorithms(figure):
    algorithm, _, rest = figure.partition("/")
    folder = REPO / "algorithms" / algorithm
    if not folder.is_dir():
        pytest.skip(f"algorithms/{algorithm}/ not written yet: cannot check that it exports {figure}")
    stem = rest.split("/")[0]  # e.g. lagrange of lagrange/1
    sources = "\n".join(p.read_text() for p in (REPO / "algorithms").rglob("*.py"))
    assert re.search(rf"\b{re.escape(stem)}\b", sources), f"no algorithm code names the figure {figure}"


def test_configmap_embeds_exactly_the_dashboards():
    (configmap,) = [d for d in yaml.safe_load_all(CONFIGMAP.read_text()) if d]
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {p.name: p.read_text() for p in dashboard_files()}
    # And it is exactly what the documented regeneration command writes.
    assert CONFIGMAP.read_text() == k8s.render_dashboards_configmap({p.name: p.read_text() for p in dashboard_files()})
    # `kubectl apply` keeps the whole object in an annotation limited to 256 KiB.
    assert len(CONFIGMAP.read_bytes()) < 256 * 1024


# ---------------------------------------------------------------------------------------------------
# Every queried metric is really exported: a real local run, scraped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_scrape(text: str, into: dict[str, set[str]]) -> None:
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s", line)
            if match:
                labels = into.setdefault(match.group(1), set())
                labels.update(re.findall(r'(\w+)="', match.group(3) or ""))


ARMILLARY_METRICS = {"ray_armillary_env_steps_total", "ray_armillary_env_steps_per_second",
                     "ray_armillary_episode_return_mean", "ray_armillary_training_iteration",
                     "ray_armillary_algorithm_metric"}


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> dict[str, set[str]]:
    """Metric name -> label keys seen on Ray's Prometheus endpoint while a smoke experiment ran."""
    import ray

    from armillary.platform.metrics import RayMetrics
    from armillary.platform.runner import run_experiment
    from armillary.platform.spec import load_spec

    saved = {k: os.environ.pop(k) for k in ("MLFLOW_TRACKING_URI",) if k in os.environ}
    started_here = not ray.is_initialized()
    if started_here:
        # A separate local Ray, exporting metrics every second (default 10 s) so a short run shows up.
        port = _free_port()
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _metrics_export_port=port, _system_config={"metrics_report_interval_ms": 1000})
    else:  # another test module's local Ray: use its metrics port (and its 10 s export interval)
        port = ray._private.worker._global_node.metrics_export_port
    seen: dict[str, set[str]] = {}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    _parse_scrape(response.read().decode(), seen)
            except OSError:
                pass
            stop.wait(0.5)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        outcome = run_experiment(load_spec("ppo/cartpole", smoke=True), root=tmp_path_factory.mktemp("runs"))
        assert outcome.ok
        # PPO has no method figures: publish the documented ones through the same RayMetrics class
        # the trainable uses, so ray_armillary_algorithm_metric is exported by the real code path.
        for algorithm in sorted({f.split("/")[0] for f in ALGORITHM_FIGURES}):
            gauges = RayMetrics({"experiment": "dashboards-check", "trial": "t0", "algorithm": algorithm, "env": "none"})
            gauges.publish({f: 1.0 for f in ALGORITHM_FIGURES if f.startswith(algorithm + "/")}, algorithm, 1)
        _drive_reward_service(tmp_path_factory.mktemp("clip"))
        deadline = time.monotonic() + 60
        while not (ARMILLARY_METRICS | SERVE_METRICS) <= set(seen) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        poller.join(timeout=10)
        if started_here:
            ray.shutdown()
        os.environ.update(saved)
    return seen


# Ray Serve's own metrics of the reward deployment that the reward-service panels chart.
SERVE_METRICS = {"ray_serve_deployment_processing_latency_ms_bucket", "ray_serve_actual_batch_size_sum",
                 "ray_serve_actual_batch_size_count"}


def _drive_reward_service(folder) -> None:
    """The real CLIP reward deployment on a tiny untrained model, sent concurrent requests so that Serve's
    latency and batch-size metrics are exported under deployment="ClipRewardModel"."""
    from ray import serve

    from armillary.algorithms.clip_reward.model_settings import ServeConfig
    from armillary.algorithms.clip_reward.models import build_clip, build_tokenizer, save_clip
    from armillary.algorithms.clip_reward.serve import DEPLOYMENT_NAME, start
    from armillary.envs.language_goals import LanguageGoalOptions, World, success_triples

    assert DEPLOYMENT_NAME == "ClipRewardModel"  # the name the panels select on
    world = World(LanguageGoalOptions())
    tokenizer = build_tokenizer(world.vocabulary())
    model = save_clip(build_clip("tiny", 48, 16, len(tokenizer), seed=0), tokenizer, folder / "tiny")
    handle = start(ServeConfig(model=str(model), app_name="dashboards-check", max_batch_size=8, batch_wait_timeout_s=0.05))
    try:
        frames, goals, _ = success_triples(16, seed=0)
        calls = [handle.score.remote(frames[i], goals[i], world.goals) for i in range(16)]
        for call in calls:
            call.result(timeout_s=120)
    finally:
        serve.delete("dashboards-check")


def _gpu_only_metrics() -> tuple[set[str], set[str]]:
    """Ray's per-GPU node metrics (exported only by nodes that have a GPU) and their tag keys, from
    Ray's own metric definitions: there is no GPU here to scrape them from."""
    from ray.dashboard.consts import GPU_TAG_KEYS
    from ray.dashboard.modules.reporter.reporter_agent import METRICS_GAUGES

    names = {f"ray_{name}" for name in METRICS_GAUGES if re.match(r"node_(gpus?|gram)_", name)}
    return names, set(GPU_TAG_KEYS) | {"SessionName", "Version"}


# Labels Prometheus adds when it scrapes (target labels) and the ones our PodMonitors add by relabeling.
SCRAPE_LABELS = {"instance", "job", "namespace", "pod", "container", "endpoint", "service"}


def _relabeled_labels() -> set[str]:
    labels = set()
    for doc in yaml.safe_load_all((REPO / "k8s" / "base" / "monitoring.yaml").read_text()):
        if doc and doc["kind"] == "PodMonitor":
            for endpoint in doc["spec"]["podMetricsEndpoints"]:
                labels |= {r["targetLabel"] for r in endpoint.get("relabelings", [])}
    return labels


@pytest.mark.ray
def test_every_queried_metric_is_exported(scraped):
    assert ARMILLARY_METRICS <= {n for _, e in queries() for n in metric_names(e)}  # the check covers them all
    assert ARMILLARY_METRICS | {"ray_node_cpu_utilization", "ray_resources"} <= set(scraped), sorted(scraped)
    gpu_only, _ = _gpu_only_metrics()
    missing = {}
    for where, expr in queries():
        for name in metric_names(expr):
            if name not in scraped and name not in gpu_only:
                missing.setdefault(name, []).append(where)
    assert not missing, f"queried but never exported: {missing}"
    # The GPU panels and alert query names that Ray declares (checked above instead of scraped).
    queried = {n for _, e in queries() for n in metric_names(e)}
    assert {"ray_node_gpus_utilization", "ray_node_gram_used"} <= queried & gpu_only


@pytest.mark.ray
def test_every_filtered_label_exists(scraped):
    gpu_only, gpu_labels = _gpu_only_metrics()
    added = SCRAPE_LABELS | _relabeled_labels()
    assert "ray_io_cluster" in added
    wrong = []
    checks = [(where, metric, label) for where, expr in queries()
              for metric, matchers in selectors(expr) for label, _, _ in matchers]
    for where, metric, label in checks + variable_labels():
        known = scraped.get(metric) or (gpu_labels if metric in gpu_only else set())
        if label not in known | added:
            wrong.append(f"{where}: {metric} has no label {label!r} (it has {sorted(known)})")
    assert not wrong, "\n".join(wrong)
