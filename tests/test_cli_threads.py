"""``--threads N`` on train, eval, infer and demo: one option, applied before the command."""
from __future__ import annotations

import pytest
import torch

from pytal.cli import apply_threads, build_parser, main


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("argv, default", [
    (["train", "cltdr_gmg_small", "--output", "x"], None),      # None: torch's choice
    (["eval", "--ckpt", "x.pt"], None),
    (["infer", "--ckpt", "x.pt", "--features", "f", "--out", "o.json"], None),
    (["demo"], 1),                                              # the demo: one thread
])
def test_threads_option_sets_torch_threads(argv, default, restore_threads):
    parser = build_parser()
    assert parser.parse_args(argv).threads == default
    apply_threads(parser.parse_args(argv))
    target = 1 if torch.get_num_threads() != 1 else 2
    apply_threads(parser.parse_args([*argv, "--threads", str(target)]))
    assert torch.get_num_threads() == target


def test_threads_applied_by_main(tmp_path, restore_threads, capsys):
    target = 1 if torch.get_num_threads() != 1 else 2
    # the command itself fails (no checkpoint) after the option was applied
    assert main(["eval", "--ckpt", str(tmp_path / "missing.pt"), "--threads", str(target)]) == 1
    assert torch.get_num_threads() == target


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_threads_bad_value_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as err:
        build_parser().parse_args(["demo", "--threads", value])
    assert err.value.code == 2
    assert "--threads: expected an integer >= 1" in capsys.readouterr().err
