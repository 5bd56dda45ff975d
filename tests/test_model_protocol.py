"""The model protocol: a detector registered outside pytal (tests/standin_detector.py, which
imports nothing of CLTDR-GMG) is configured, trained, evaluated and checkpointed by the engine
and by ``pytal train`` / ``pytal eval --ckpt``; the engine, CLI, bench and demo import no
concrete detector."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from pytal.config import load_config, save_config
from pytal.data.synthetic import write_dataset
from pytal.engine import Trainer, load_model

import standin_detector

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("standin"), num_videos=8, num_classes=3,
                         feat_dim=8, seed=1, duration_range=(12.0, 24.0),
                         action_seconds=(1.0, 6.0))


def _config_file(ds, path) -> str:
    """A YAML config of the stand-in on ``ds``: only keys the stand-in and the engine know."""
    raw = {"model": {"name": "stand_in", "hidden": 8},
           "dataset": {"name": "thumos14_like", **{k.split(".")[1]: v
                                                   for k, v in ds.config_overrides().items()},
                       "train_subset": "training", "val_subset": "validation",
                       "max_seq_len": 64},
           "train": {"epochs": 3, "warmup_epochs": 0, "batch_size": 2, "lr": 0.01,
                     "seed": 3}}
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_stand_in_needs_nothing_of_cltdr_gmg():
    assert not any("cltdr" in n.lower() for n in _imports(standin_detector.__file__))


@pytest.mark.parametrize("part", ["engine", "cli.py", "bench.py", "demo.py", "config.py"])
def test_engine_cli_bench_demo_import_no_concrete_detector(part):
    base = os.path.join(ROOT, "pytal", part)
    files = ([os.path.join(base, f) for f in os.listdir(base) if f.endswith(".py")]
             if os.path.isdir(base) else [base])
    for file in files:
        found = [n for n in _imports(file) if "cltdr" in n.lower() or "CLTDRGMG" in n]
        assert not found, f"{file} imports {found}"


def test_engine_trains_and_reloads_the_stand_in(dataset, tmp_path):
    cfg = load_config(_config_file(dataset, tmp_path / "standin.yaml"))
    assert isinstance(cfg.model, standin_detector.StandInConfig) and cfg.model.hidden == 8
    assert cfg.eval.tiou_thresholds == (0.3, 0.4, 0.5, 0.6, 0.7)      # thumos* preset
    trainer = Trainer(cfg, str(tmp_path / "run"), progress=False)
    assert isinstance(trainer.model, standin_detector.StandInDetector)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    best = trainer.fit()
    assert best is not None and len(best["mAP"]) == 5 and best["epoch"] == 3
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert all(h["average_mAP"] >= 0 for h in trainer.history)
    detections = json.loads((tmp_path / "run" / "detections.json").read_text())
    assert set(detections["results"]) == set(dataset.subsets["validation"])
    model, again, names = load_model(str(tmp_path / "run" / "best.pt"))
    assert isinstance(model, standin_detector.StandInDetector) and again == cfg
    assert names == trainer.val_set.class_names


def test_pytal_train_and_eval_with_a_stand_in_registered_outside(dataset, tmp_path):
    config = _config_file(dataset, tmp_path / "standin.yaml")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, TESTS]))
    run = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "pytal", "train", config, "--output", str(run),
                            "--import", "standin_detector", "--no-progress", "--threads", "1",
                            "--override", "train.epochs=2"],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
    assert train.returncode == 0, train.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"] == {"name": "stand_in", "hidden": 8, "center_sample_radius": 1.5}
    assert saved["train"]["epochs"] == 2 and "avg" in train.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    evaluate = subprocess.run([sys.executable, "-m", "pytal", "eval", "--ckpt", str(run / "best.pt"),
                               "--import", "standin_detector", "--json", str(tmp_path / "m.json")],
                              capture_output=True, text=True, env=env, cwd=str(tmp_path),
                              timeout=600)
    assert evaluate.returncode == 0, evaluate.stderr
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["tiou_thresholds"] == metrics["tiou_thresholds"]
    assert again["mAP"] == pytest.approx(metrics["mAP"], abs=1e-9)
    missing = subprocess.run([sys.executable, "-m", "pytal", "train", config, "--output",
                              str(tmp_path / "x")], capture_output=True, text=True, env=env,
                             cwd=str(tmp_path), timeout=600)
    assert missing.returncode == 1 and "model.name must be one of" in missing.stderr


def test_saved_config_of_the_stand_in_round_trips(dataset, tmp_path):
    cfg = load_config(_config_file(dataset, tmp_path / "standin.yaml"), {"model.hidden": 4})
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(str(tmp_path / "saved.yaml")) == cfg


def test_training_time_evaluation_uses_the_dataset_preset(dataset, tmp_path):
    """An ActivityNet-named dataset is evaluated at 0.5:0.95:0.05 during training (the packaged
    cltdr_gmg_anet config used to get THUMOS14's thresholds)."""
    cfg = load_config(_config_file(dataset, tmp_path / "standin.yaml"),
                      {"dataset.name": "activitynet_like"})
    trainer = Trainer(cfg, None, progress=False)
    metrics, _ = trainer.evaluate()
    assert metrics["tiou_thresholds"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
