"""Hostile, corrupted, truncated and mistyped files through the ``pytal`` command (a real
subprocess): a checkpoint whose pickle would run code is refused and the code never runs;
every other bad file ends the command with exit status 1 and one line naming the file and what
is wrong, no traceback (unless PYTAL_DEBUG=1)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from pytal.config import load_config
from pytal.data.synthetic import write_dataset
from pytal.engine.checkpoint import CHECKPOINT_FORMAT, atomic_save, load_checkpoint
from pytal.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64"]
FEAT_DIM = 16


class RunsCode:
    """Unpickling this creates ``marker``: what a hostile checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def pytal(*args: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("PYTAL_DEBUG", None)
    if debug:
        env["PYTAL_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-m", "pytal", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def infer(ckpt, features, tmp_path, **kwargs) -> subprocess.CompletedProcess:
    """``pytal infer --ckpt CKPT --features FEATURES --out tmp_path/det.json``."""
    return pytal("infer", "--ckpt", str(ckpt), "--features", str(features), "--out",
                 str(tmp_path / "det.json"), **kwargs)


def resume(run, last: dict) -> subprocess.CompletedProcess:
    """``pytal train --resume`` in a new run folder ``run`` whose last.pt holds ``last``."""
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(last["config"]))
    torch.save(last, run / "last.pt")
    return pytal("train", "cltdr_gmg_small", "--output", str(run), "--resume", "--no-progress")


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, *parts: str) -> None:
    """Exit status 1 and exactly one stderr line ``pytal COMMAND: error: ...`` holding
    ``parts``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"pytal {command}: error: "), result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny synthetic dataset and an untrained pytal checkpoint for it."""
    root = tmp_path_factory.mktemp("files")
    data = write_dataset(root / "data", num_videos=4, num_classes=3, feat_dim=FEAT_DIM, seed=5,
                         duration_range=(12.0, 16.0), action_seconds=(1.0, 4.0))
    overrides = [f"{k}={v}" for k, v in data.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "train.epochs=1", "train.warmup_epochs=0", "train.batch_size=2", *TINY]
    cfg = load_config("cltdr_gmg_small", overrides)
    ckpt = root / "model.pt"
    atomic_save({"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "epoch": 0,
                 "model": build_model(cfg).state_dict()}, ckpt)
    return root, data, overrides, ckpt


def features_file(root, name: str, array: np.ndarray) -> str:
    path = str(root / name)
    np.save(path, array)
    return path


# ------------------------------------------------------------------ checkpoints that run code

def hostile_content(setup_ckpt, marker) -> dict:
    """A pytal checkpoint with one more entry whose unpickling runs ``touch marker``."""
    ckpt = torch.load(setup_ckpt, weights_only=True)
    ckpt["note"] = RunsCode(str(marker))
    return ckpt


def hostile_checkpoint(root, setup_ckpt, marker) -> str:
    path = str(root / "hostile.pt")
    torch.save(hostile_content(setup_ckpt, marker), path)
    return path


def test_the_hostile_checkpoint_does_run_code_when_fully_unpickled(setup, tmp_path):
    root, _, _, ckpt = setup
    marker = tmp_path / "ran"
    torch.load(hostile_checkpoint(tmp_path, ckpt, marker), weights_only=False)
    assert marker.exists()                   # so the tests below can see the code run


@pytest.mark.parametrize("command", ["infer", "eval"])
def test_hostile_checkpoint_is_refused_and_runs_nothing(setup, tmp_path, command):
    root, data, _, ckpt = setup
    marker = tmp_path / "ran"
    path = hostile_checkpoint(tmp_path, ckpt, marker)
    args = (["infer", "--ckpt", path, "--features", data.feature_dir, "--out",
             str(tmp_path / "det.json")] if command == "infer" else ["eval", "--ckpt", path])
    result = pytal(*args)
    assert_one_line_error(result, command, path, "refused", "posix.system",
                          f"pytal convert-checkpoint --trust {path}")
    assert not marker.exists()
    assert not (tmp_path / "det.json").exists()


def test_train_resume_refuses_a_hostile_last_checkpoint(setup, tmp_path):
    _, _, _, ckpt = setup
    marker = tmp_path / "ran"
    result = resume(tmp_path / "run", hostile_content(ckpt, marker))
    assert_one_line_error(result, "train", str(tmp_path / "run" / "last.pt"), "refused")
    assert not marker.exists()


def test_convert_checkpoint_needs_trust_and_then_writes_a_safe_file(setup, tmp_path):
    root, data, _, ckpt = setup
    legacy = dict(torch.load(ckpt, weights_only=True))
    legacy["rng"] = np.random.get_state()       # numpy objects: refused by the safe loader
    legacy["best"] = {"average_mAP": np.float64(0.25)}
    source, out = str(tmp_path / "legacy.pt"), str(tmp_path / "safe.pt")
    torch.save(legacy, source)
    refused = infer(source, data.feature_dir, tmp_path)
    assert_one_line_error(refused, "infer", source, "numpy")
    assert_one_line_error(pytal("convert-checkpoint", source, out), "convert-checkpoint",
                          "--trust")
    assert not os.path.exists(out)
    converted = pytal("convert-checkpoint", "--trust", source, out)
    assert converted.returncode == 0, converted.stderr
    safe = load_checkpoint(out)
    assert safe["best"] == {"average_mAP": 0.25} and isinstance(safe["rng"][1], torch.Tensor)
    assert np.array_equal(safe["rng"][1].numpy(), legacy["rng"][1])
    for key, value in legacy["model"].items():
        assert torch.equal(safe["model"][key], value), key
    done = infer(out, data.feature_dir, tmp_path)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------- unreadable checkpoint files

@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "json"])
def test_unreadable_checkpoint_is_one_line(setup, tmp_path, damage):
    root, data, _, ckpt = setup
    content = open(ckpt, "rb").read()
    path = tmp_path / "bad.pt"
    path.write_bytes({"truncated": content[:len(content) // 2], "garbage": os.urandom(4096),
                      "empty": b"", "json": b'{"format": "pytal-checkpoint-1"}'}[damage])
    result = infer(str(path), data.feature_dir, tmp_path)
    assert_one_line_error(result, "infer", f"{path}: not a checkpoint (")


def test_pytal_debug_shows_the_traceback(setup, tmp_path):
    _, data, _, _ = setup
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    result = infer(str(path), data.feature_dir, tmp_path, debug=True)
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert "CheckpointError" in result.stderr


# ------------------------------------------------------------------------------ JSON files

@pytest.mark.parametrize("text,where", [
    ('{"database": {\n  "a" {"subset": "s"}}}', "line 2 column 7"),
    ('{"database": {"a": {"subset": "s", "annotations": [', "line 1 column 52"),
    ('{"database": {"a": {"subset": "s"},}}', "line 1 column 36"),
])
def test_json_syntax_error_names_file_line_and_column(tmp_path, text, where):
    gt = tmp_path / "gt.json"
    gt.write_text(text)
    pred = tmp_path / "pred.json"
    pred.write_text('{"results": {}}')
    result = pytal("eval", "--gt", str(gt), "--pred", str(pred), "--subset", "s")
    assert_one_line_error(result, "eval", f"{gt}: not a valid JSON annotation file", where)


def test_json_prediction_file_not_utf8(tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"a": {"subset": "s", "annotations": [
        {"segment": [0, 1], "label": "x"}]}}}))
    pred = tmp_path / "pred.json"
    pred.write_bytes(b'{"results": {"a": [{"label": "\xff"}]}}')
    result = pytal("eval", "--gt", str(gt), "--pred", str(pred), "--subset", "s")
    assert_one_line_error(result, "eval", str(pred), "not UTF-8")


@pytest.mark.parametrize("segment,message", [
    ([5.0, 2.0], "field 'segment' must have end >= start"),
    ([0.0, 10 ** 400], "two finite numbers"),
])
def test_train_refuses_an_annotation_with_a_bad_segment(setup, tmp_path, segment, message):
    _, data, overrides, _ = setup
    database = json.load(open(data.annotation_file))
    video = next(iter(database["database"].values()))
    video["annotations"][0]["segment"] = segment
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(database))
    result = pytal("train", "cltdr_gmg_small", "--output", str(tmp_path / "run"), "--no-progress",
                   "--override", *overrides, f"dataset.annotation_file={ann}")
    assert_one_line_error(result, "train", str(ann), "annotation 0", message)


# --------------------------------------------------------------------------- feature files

@pytest.mark.parametrize("name,array,message", [
    ("nan.npy", "nan", "nan at step 5 (channel 3); features must be finite"),
    ("inf.npy", "inf", "inf at step 0 (channel 0); features must be finite"),
    ("rank3.npy", np.zeros((2, 30, FEAT_DIM), np.float32), "expected a (T, C) array, got shape"),
    ("ints.npy", np.zeros((30, FEAT_DIM), np.int64), "expected floating-point features"),
    ("narrow.npy", np.zeros((30, FEAT_DIM - 1), np.float32),
     f"{FEAT_DIM - 1} channels, expected input_dim={FEAT_DIM}"),
    ("objects.npy", np.array([{"a": 1}], dtype=object), "not a readable .npy file"),
    ("truncated.npy", "truncated", "not a readable .npy file"),
])
def test_infer_refuses_a_bad_feature_file(setup, tmp_path, name, array, message):
    _, _, _, ckpt = setup
    good = np.random.default_rng(0).standard_normal((30, FEAT_DIM)).astype(np.float32)
    if isinstance(array, str):
        if array == "nan":
            good[5, 3] = np.nan
            good[7, 0] = np.nan
        elif array == "inf":
            good[0, 0] = np.inf
    path = features_file(tmp_path, name, good if isinstance(array, str) else array)
    if isinstance(array, str) and array == "truncated":
        content = open(path, "rb").read()
        open(path, "wb").write(content[:len(content) // 2])
    result = infer(str(ckpt), path, tmp_path)
    assert_one_line_error(result, "infer", path, message)


def test_train_refuses_non_finite_features(setup, tmp_path):
    _, data, overrides, _ = setup
    feature_dir = tmp_path / "feats"
    feature_dir.mkdir()
    for name in os.listdir(data.feature_dir):
        feats = np.load(os.path.join(data.feature_dir, name))
        feats[2, 1] = np.inf
        np.save(feature_dir / name, feats)
    result = pytal("train", "cltdr_gmg_small", "--output", str(tmp_path / "run"), "--no-progress",
                   "--override", *overrides, f"dataset.feature_dir={feature_dir}")
    assert_one_line_error(result, "train", str(feature_dir), "inf at step 2 (channel 1)")


def test_infer_refuses_a_feature_file_that_runs_code(setup, tmp_path):
    _, _, _, ckpt = setup
    marker = tmp_path / "ran"
    path = str(tmp_path / "hostile.pt")
    torch.save({"feats": torch.zeros(30, FEAT_DIM), "x": RunsCode(str(marker))}, path)
    result = infer(str(ckpt), path, tmp_path)
    assert_one_line_error(result, "infer", path, "refused: loading it would import posix.system")
    assert not marker.exists()


@pytest.mark.parametrize("damage,message", [
    ("no_model", "not a complete pytal checkpoint (field 'model' missing or not a dict)"),
    ("other_weights", "its weights do not fit the model of the config (Missing key(s)"),
])
def test_infer_refuses_a_checkpoint_whose_weights_do_not_fit(setup, tmp_path, damage, message):
    _, data, _, ckpt = setup
    content = torch.load(ckpt, weights_only=True)
    if damage == "no_model":
        del content["model"]
    else:
        content["model"] = {"encoder.weight": torch.zeros(2)}
    path = str(tmp_path / f"{damage}.pt")
    torch.save(content, path)
    result = infer(path, data.feature_dir, tmp_path)
    assert_one_line_error(result, "infer", path, message)


def test_train_resume_refuses_a_checkpoint_without_training_state(setup, tmp_path):
    _, _, _, ckpt = setup
    result = resume(tmp_path / "run", torch.load(ckpt, weights_only=True))   # no optimizer
    assert_one_line_error(result, "train", str(tmp_path / "run" / "last.pt"),
                          "not a resumable checkpoint")
