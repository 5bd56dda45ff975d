"""benchmarks.gpu_check on a machine without a GPU: the dry run lists every step, a run
without a GPU says so and runs nothing, the budget skips what no longer fits, and the report
is written as markdown and JSON."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_cases import CASES


def test_dry_run_lists_every_step(capsys):
    assert gpu_check.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "device:" in out
    for step in gpu_check.plan():
        assert step.name in out
    assert "-m pytest -q -m cuda" in out and "not test_edge_case_in_a_fresh_process" in out
    assert all(f"benchmarks.gpu_cases {case}" in out for case in CASES)
    for module in ("soft_nms", "boundary_pool", "gmg", "trident_decode"):
        assert f"benchmarks.{module}" in out
    assert "pytal bench --device cuda" in out


def test_sanitizer_steps_only_with_the_tool():
    names = [s.name for s in gpu_check.plan(sanitizer=None)]
    assert not any("sanitizer" in n for n in names)
    with_tool = gpu_check.plan(sanitizer="/opt/cuda/bin/compute-sanitizer")
    tools = [s.argv[2] for s in with_tool if "sanitizer" in s.name]
    assert tools == ["memcheck", "racecheck"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_without_a_gpu_nothing_runs(capsys, tmp_path):
    assert gpu_check.main(["--out", str(tmp_path / "r")]) == 2
    assert "no CUDA device: nothing is run" in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


def _step(name, code, timeout_s=30.0, min_s=1.0):
    return gpu_check.Step(name, [sys.executable, "-c", code], timeout_s, min_s)


def test_run_plan_statuses_and_budget(tmp_path):
    steps = [_step("ok", "print('fine')"),
             _step("bad", "import sys; print('broken'); sys.exit(3)"),
             _step("slow", "import time; time.sleep(30)", timeout_s=1.0),
             _step("big", "print('never')", min_s=1e6)]
    logged = []
    outcomes = gpu_check.run_plan(steps, budget_s=120.0, log=logged.append)
    status = {o.name: o for o in outcomes}
    assert status["ok"].status == "passed" and "fine" in status["ok"].output_tail
    assert status["bad"].status == "failed" and status["bad"].returncode == 3
    assert "broken" in status["bad"].output_tail
    assert status["slow"].status == "timeout" and status["slow"].seconds < 10
    assert status["big"].status == "skipped" and "budget" in status["big"].note
    assert any("[big] skipped" in line for line in logged)


def test_a_spent_budget_skips_the_rest():
    now = [0.0]

    def runner(step, timeout_s):
        now[0] += 50.0
        return gpu_check.Outcome(step.name, "x", "passed", 50.0, 0)

    steps = [_step(f"s{i}", "", min_s=20.0) for i in range(4)]
    outcomes = gpu_check.run_plan(steps, budget_s=110.0, clock=lambda: now[0], runner=runner,
                                  log=lambda line: None)
    assert [o.status for o in outcomes] == ["passed", "passed", "skipped", "skipped"]


def test_report_is_written_as_markdown_and_json(tmp_path):
    outcomes = [gpu_check.Outcome("cuda tests", "python -m pytest", "passed", 12.5, 0,
                                  output_tail="3 passed"),
                gpu_check.Outcome("pytal bench", "python -m pytal bench", "skipped",
                                  note="budget: 5 s left, needs 30 s")]
    device = {"torch": "2.x", "torch_cuda": "13.0", "cuda_available": True, "device": "GPU X",
              "capability": "9.0", "device_count": 1}
    gpu_check.write_report(str(tmp_path / "out"), device, 480.0, 20.0, outcomes)
    data = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert data["summary"] == "1 passed, 1 skipped"
    assert [s["status"] for s in data["steps"]] == ["passed", "skipped"]
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "GPU X" in md and "| pytal bench | skipped | 0.0 | budget: 5 s left" in md
    assert "3 passed" in md
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_check.json",
                                                                    "gpu_check.md"]
