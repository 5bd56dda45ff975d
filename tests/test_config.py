"""pytal.config: packaged names, overrides, errors that name the key."""
from __future__ import annotations

import pytest

from pytal.config import ConfigError, load_config, packaged_configs, parse_override, save_config


@pytest.mark.parametrize("name", ["cltdr_gmg_small", "cltdr_gmg_thumos", "cltdr_gmg_anet"])
def test_packaged_configs_validate(name):
    assert name in packaged_configs()
    cfg = load_config(name)
    assert cfg["model"]["name"] == "cltdr_gmg"


def test_overrides_are_yaml_scalars():
    cfg = load_config("cltdr_gmg_small", ["train.epochs=3", "train.lr=1e-3",
                                          "train.model_ema=true", "dataset.default_fps=null",
                                          "dataset.crop_ratio=[0.5, 1.0]"])
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 1e-3
    assert cfg["train"]["model_ema"] is True and cfg["dataset"]["default_fps"] is None
    assert cfg["dataset"]["crop_ratio"] == [0.5, 1.0]
    assert parse_override("a.b=x") == (["a", "b"], "x")


def test_yaml_path_and_save_roundtrip(tmp_path):
    cfg = load_config("cltdr_gmg_small", ["train.epochs=2"])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    assert load_config(str(path)) == cfg


@pytest.mark.parametrize("override,message", [
    ("train.epoch=3", "unknown key train.epoch"),
    ("model.headdim=8", "unknown key model.headdim"),
    ("test.nms=soft", "unknown key test.nms"),
    ("model.embd_dim=abc", "model.embd_dim must be an integer"),
    ("model.cls_loss=mse", "model.cls_loss"),
    ("dataset.feature_dir=3", "dataset.feature_dir must be str"),
    ("dataset.max_seq_len=1.5", "dataset.max_seq_len must be int"),
    ("train.lr=fast", "train.lr must be a number"),
    ("train.model_ema=1", "train.model_ema must be true or false"),
    ("model.name=nope", "model.name must be one of"),
    ("foo.bar=1", "foo is not a config section"),
    ("train.epochs", "expected section.key=value"),
])
def test_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("cltdr_gmg_small", [override])


def test_unknown_section_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: cltdr_gmg}\nextra: {a: 1}\n")
    with pytest.raises(ConfigError, match="unknown section 'extra'"):
        load_config(str(bad))
    with pytest.raises(FileNotFoundError, match="no packaged config"):
        load_config("no_such_config")
