"""pytal.config: typed sections, overrides (strings and dicts), saving, errors naming key and file."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from pytal.config import (Config, ConfigError, DatasetConfig, EvalConfig, TrainConfig,
                          config_from_dict, load_config, packaged_configs, parse_override,
                          save_config)
from pytal.evaluation.thresholds import (ACTIVITYNET_TIOU, EPIC_TIOU, HACS_TIOU, MULTITHUMOS_TIOU,
                                         THUMOS14_TIOU)
from pytal.models.cltdr_gmg import CLTDRGMGConfig
from pytal.models.seqattnet import SeqAttNetConfig
from pytal.models.talmts import TALMTSConfig

#: THUMOS14 as TAL-MTS reports it: tIoU 0.1 to 0.7.
TALMTS_THUMOS_TIOU = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)

PACKAGED = {"cltdr_gmg_small": THUMOS14_TIOU, "cltdr_gmg_thumos": THUMOS14_TIOU,
            "cltdr_gmg_thumos_videomae": THUMOS14_TIOU, "cltdr_gmg_thumos_internvideo2": THUMOS14_TIOU,
            "cltdr_gmg_multithumos_i3d": MULTITHUMOS_TIOU, "cltdr_gmg_multithumos_i3d_rgb": MULTITHUMOS_TIOU,
            "cltdr_gmg_multithumos_videomae": MULTITHUMOS_TIOU,
            "cltdr_gmg_epic_slowfast_verb": EPIC_TIOU, "cltdr_gmg_epic_slowfast_noun": EPIC_TIOU,
            "cltdr_gmg_anet": ACTIVITYNET_TIOU, "cltdr_gmg_anet_tsp_release": ACTIVITYNET_TIOU,
            "cltdr_gmg_hacs_i3d": HACS_TIOU, "cltdr_gmg_hacs_slowfast": HACS_TIOU,
            "seqattnet_anet": ACTIVITYNET_TIOU, "seqattnet_small": ACTIVITYNET_TIOU,
            "talmts_small": TALMTS_THUMOS_TIOU, "talmts_thumos": TALMTS_THUMOS_TIOU,
            "talmts_anet": ACTIVITYNET_TIOU}
MODEL_CONFIGS = {"cltdr_gmg": CLTDRGMGConfig, "seqattnet": SeqAttNetConfig, "talmts": TALMTSConfig}


def test_every_packaged_config_is_listed_and_typed():
    assert sorted(PACKAGED) == packaged_configs()
    for name in PACKAGED:
        cfg = load_config(name)
        model = next(m for m in MODEL_CONFIGS if name.startswith(m + "_"))
        assert isinstance(cfg, Config) and isinstance(cfg.model, MODEL_CONFIGS[model])
        assert isinstance(cfg.dataset, DatasetConfig) and isinstance(cfg.train, TrainConfig)
        assert isinstance(cfg.eval, EvalConfig) and cfg.model.name == model


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_tiou_thresholds_of_packaged_configs(name):
    assert load_config(name).eval.tiou_thresholds == PACKAGED[name]


def test_tiou_thresholds_preset_by_dataset_name_unless_set():
    assert load_config("cltdr_gmg_small", {"dataset.name": "epic_kitchens_100"}
                       ).eval.tiou_thresholds == EPIC_TIOU
    assert load_config("cltdr_gmg_small", {"dataset.name": "anet"}
                       ).eval.tiou_thresholds == ACTIVITYNET_TIOU
    set_ = load_config("cltdr_gmg_anet", ["eval.tiou_thresholds=[0.5, 0.75]"])
    assert set_.eval.tiou_thresholds == (0.5, 0.75)
    with pytest.raises(ConfigError, match=r"eval.tiou_thresholds is not set and dataset.name "
                                          r"'mine' has no preset"):
        load_config("cltdr_gmg_small", {"dataset.name": "mine"})


def test_packaged_configs_name_only_packaged_files():
    """No packaged config points outside the package: the annotation file is package data, or,
    for benchmarks whose annotations are not shipped, a path under the user's ``data/``."""
    for name in PACKAGED:
        cfg = load_config(name)
        with open(cfg.source.split(" ", 1)[1]) as f:
            raw = yaml.safe_load(f)
        assert ".." not in raw["dataset"]["annotation_file"]
        if raw["dataset"]["annotation_file"].startswith("data/"):
            assert cfg.dataset.name in ("multithumos", "epic_kitchens_100", "hacs"), name
            continue
        assert raw["dataset"]["annotation_file"].startswith("pytal:resources/")
        with open(cfg.dataset.annotation_file, "rb") as f:        # it exists where installed
            assert f.read(2) in (b"{\n", b'{"', b"\x1f\x8b")


def test_overrides_as_strings_and_as_dict_agree():
    strings = load_config("cltdr_gmg_small", ["train.epochs=3", "train.lr=1e-3",
                                              "train.model_ema=true", "dataset.default_fps=null",
                                              "dataset.crop_ratio=[0.5, 1.0]",
                                              "model.backbone_arch=[2, 1, 4]"])
    assert strings.train.epochs == 3 and strings.train.lr == 1e-3
    assert strings.train.model_ema is True and strings.dataset.default_fps is None
    assert strings.dataset.crop_ratio == (0.5, 1.0)
    flat = load_config("cltdr_gmg_small", {"train.epochs": 3, "train.lr": 1e-3,
                                           "train.model_ema": True, "dataset.default_fps": None,
                                           "dataset.crop_ratio": [0.5, 1.0],
                                           "model.backbone_arch": [2, 1, 4]})
    nested = load_config("cltdr_gmg_small", {"train": {"epochs": 3, "lr": 1e-3, "model_ema": True},
                                             "dataset": {"default_fps": None,
                                                         "crop_ratio": [0.5, 1.0]},
                                             "model.backbone_arch": [2, 1, 4]})
    assert strings == flat == nested
    assert strings != load_config("cltdr_gmg_small")
    assert parse_override("a.b=x") == (["a", "b"], "x")
    assert parse_override("a.b=1e-3") == (["a", "b"], 1e-3)


def test_round_trip_load_override_save_load(tmp_path):
    cfg = load_config("cltdr_gmg_anet", ["train.epochs=2", "model.embd_dim=64", "model.fpn_dim=64",
                                         "dataset.feature_dir=/feats"])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    again = load_config(str(path))
    assert again == cfg and again.model.embd_dim == 64 and again.train.epochs == 2
    saved = yaml.safe_load(path.read_text())
    for section in ("dataset", "train", "eval"):            # every default written out
        cls = type(getattr(cfg, section))
        assert set(saved[section]) == {f.name for f in dataclasses.fields(cls)}
    assert set(saved["model"]) == {f.name for f in dataclasses.fields(CLTDRGMGConfig)}
    assert saved["eval"]["tiou_thresholds"] == list(ACTIVITYNET_TIOU)
    assert config_from_dict(cfg.to_dict()) == cfg


# One unknown and one mistyped key per section; the message names the key and the file.
@pytest.mark.parametrize("override,message", [
    ("model.headdim=8", "unknown key model.headdim"),
    ("model.embd_dim=abc", "model.embd_dim must be an integer"),
    ("model.cls_loss=mse", "model.cls_loss must be one of varifocal, focal"),
    ("dataset.featuredir=/x", "unknown key dataset.featuredir"),
    ("dataset.max_seq_len=1.5", "dataset.max_seq_len must be an integer"),
    ("dataset.feature_dir=3", "dataset.feature_dir must be a string"),
    ("train.epoch=3", "unknown key train.epoch"),
    ("train.lr=fast", "train.lr must be a number"),
    ("train.model_ema=1", "train.model_ema must be true or false"),
    ("eval.nms=soft", "unknown key eval.nms"),
    ("eval.pre_nms_topk=many", "eval.pre_nms_topk must be an integer"),
    ("eval.tiou_thresholds=[0.5, 1.5]", r"eval.tiou_thresholds must be a non-empty list"),
    ("train.epochs=0", "train.epochs must be an integer >= 1"),
    ("train.optimizer=sgd", "train.optimizer must be one of adamw, adam"),
    ("model.name=nope", "model.name must be one of"),
    ("foo.bar=1", "foo is not a config section"),
    ("train.epochs", "expected section.key=value"),
])
def test_errors_name_the_key_and_the_file(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config("cltdr_gmg_small", [override])
    if "section" not in message and "expected" not in message:
        assert "cltdr_gmg_small.yaml" in str(err.value)


def test_errors_from_a_dict_name_the_key():
    with pytest.raises(ConfigError, match="unknown key train.epoch"):
        load_config("cltdr_gmg_small", {"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="model.embd_dim must be an integer"):
        load_config("cltdr_gmg_small", {"model.embd_dim": "64"})


def test_cross_section_rule_names_the_key():
    with pytest.raises(ConfigError, match="dataset.max_seq_len must be a multiple of the total "
                                          "pyramid stride 16"):
        load_config("cltdr_gmg_small", {"dataset.max_seq_len": 1000})


def test_unknown_section_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: cltdr_gmg}\nextra: {a: 1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown section 'extra'"):
        load_config(str(bad))
    old = tmp_path / "old.yaml"                                  # the former section name
    old.write_text("model: {name: cltdr_gmg}\ntest: {max_seg_num: 3}\n")
    with pytest.raises(ConfigError, match="unknown section 'test'"):
        load_config(str(old))
    with pytest.raises(FileNotFoundError, match="no packaged config"):
        load_config("no_such_config")


def test_docs_list_every_key_of_every_section():
    """docs/config.md has a table row for each key of dataset, train, eval and CLTDR-GMG's model."""
    import os

    text = open(os.path.join(os.path.dirname(__file__), "..", "docs", "config.md")).read()
    for section, cls in (("dataset", DatasetConfig), ("train", TrainConfig),
                         ("eval", EvalConfig), ("model", CLTDRGMGConfig)):
        part = text.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in part, f"docs/config.md: {section}.{f.name} missing"
