"""One command for a lent GPU: every CUDA check and benchmark of pytal, within a time budget,
into one report.

    python -m benchmarks.gpu_check [--budget-s 480] [--out gpu_check_report] [--dry-run]

It builds nothing (the extension must already be built with CUDA). It prints the device, then
runs, each as a child process with its own timeout: the CUDA tests (``pytest -m cuda``), the
edge cases that need a fresh process each (``benchmarks.gpu_cases``), compute-sanitizer
memcheck and racecheck on a small case when the tool is installed, every op benchmark on CUDA
and ``pytal bench --device cuda``. A step that no longer fits in what is left of the budget is
skipped and the report says so. The report is ``gpu_check.md`` and ``gpu_check.json`` under
``--out``. Without a GPU it says so, runs nothing and exits with status 2; ``--dry-run`` lists
the steps without running them (on any machine).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Callable, Optional

from pytal.io.atomic import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Output kept per step in the report (its end: where failures are summarised).
TAIL_CHARS = 4000


@dataclasses.dataclass
class Step:
    """One child process: ``argv`` run in the repository root, killed after ``timeout_s``;
    skipped when less than ``min_s`` of the budget is left."""
    name: str
    argv: list[str]
    timeout_s: float
    min_s: float = 20.0


@dataclasses.dataclass
class Outcome:
    name: str
    command: str
    status: str            # passed, failed, timeout, skipped
    seconds: float = 0.0
    returncode: Optional[int] = None
    note: str = ""
    output_tail: str = ""


def find_sanitizer() -> Optional[str]:
    """compute-sanitizer from PATH or the CUDA toolkit, or None."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        path = os.path.join(home or "", "bin", "compute-sanitizer")
        if home and os.path.exists(path):
            return path
    return None


def plan(python: str = sys.executable, sanitizer: Optional[str] = None) -> list[Step]:
    """The steps of a full check, in the order they run (most important first, so that a
    short budget still covers the correctness checks)."""
    from benchmarks.gpu_cases import CASES, SANITIZER_CASES

    # The edge cases run as steps of their own below, not a second time inside pytest.
    steps = [Step("cuda tests", [python, "-m", "pytest", "-q", "-m", "cuda", "-p",
                                 "no:cacheprovider", "-k",
                                 "not test_edge_case_in_a_fresh_process", "tests"],
                  timeout_s=240, min_s=60)]
    for case in CASES:
        steps.append(Step(f"edge case {case}", [python, "-m", "benchmarks.gpu_cases", case],
                          timeout_s=60, min_s=10))
    if sanitizer:
        for tool in ("memcheck", "racecheck"):
            steps.append(Step(f"compute-sanitizer {tool}",
                              [sanitizer, "--tool", tool, "--error-exitcode", "1", python, "-m",
                               "benchmarks.gpu_cases", *SANITIZER_CASES], timeout_s=180,
                              min_s=30))
    steps += [
        Step("benchmark soft_nms", [python, "-m", "benchmarks.soft_nms"], timeout_s=120),
        Step("benchmark boundary_pool", [python, "-m", "benchmarks.boundary_pool", "--device",
                                         "cuda", "--repeats", "5"], timeout_s=120),
        Step("benchmark gmg", [python, "-m", "benchmarks.gmg", "--devices", "cuda"],
             timeout_s=120),
        Step("benchmark trident_decode", [python, "-m", "benchmarks.trident_decode", "--device",
                                          "cuda"], timeout_s=120),
        Step("pytal bench", [python, "-m", "pytal", "bench", "--device", "cuda"],
             timeout_s=240, min_s=30),
    ]
    return steps


def run_step(step: Step, timeout_s: float) -> Outcome:
    command = " ".join(step.argv)
    start = time.monotonic()
    try:
        done = subprocess.run(step.argv, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else \
            (exc.stdout or "")
        return Outcome(step.name, command, "timeout", time.monotonic() - start,
                       note=f"killed after {timeout_s:.0f} s", output_tail=out[-TAIL_CHARS:])
    except OSError as exc:
        return Outcome(step.name, command, "failed", time.monotonic() - start,
                       note=f"could not start: {exc}")
    return Outcome(step.name, command, "passed" if done.returncode == 0 else "failed",
                   time.monotonic() - start, done.returncode,
                   output_tail=done.stdout[-TAIL_CHARS:])


def run_plan(steps: list[Step], budget_s: float,
             clock: Callable[[], float] = time.monotonic,
             runner: Callable[[Step, float], Outcome] = run_step,
             log: Callable[[str], None] = print) -> list[Outcome]:
    """Runs the steps in order, each with min(its timeout, the budget left); skips a step
    when less than its ``min_s`` is left."""
    deadline = clock() + budget_s
    outcomes = []
    for step in steps:
        left = deadline - clock()
        if left < step.min_s:
            outcome = Outcome(step.name, " ".join(step.argv), "skipped",
                              note=f"budget: {max(left, 0):.0f} s left, needs {step.min_s:.0f} s")
        else:
            log(f"[{step.name}] running (timeout {min(step.timeout_s, left):.0f} s)")
            outcome = runner(step, min(step.timeout_s, left))
        log(f"[{step.name}] {outcome.status} ({outcome.seconds:.1f} s) {outcome.note}".rstrip())
        outcomes.append(outcome)
    return outcomes


def device_summary() -> dict:
    """The device and build this report is about."""
    import torch

    import pytal

    info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(),
            "extension": pytal.ops.backend_info()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1),
                    device_count=torch.cuda.device_count())
    return info


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def render_markdown(report: dict) -> str:
    dev = report["device"]
    lines = ["# pytal GPU check", "",
             f"- date: {report['date']}", f"- commit: {report['commit']}",
             f"- device: {dev.get('device', 'none')} (capability {dev.get('capability', '-')}, "
             f"{dev.get('device_count', 0)} visible), torch {dev['torch']} "
             f"(CUDA {dev['torch_cuda']})",
             f"- budget: {report['budget_s']:.0f} s, used {report['used_s']:.0f} s",
             f"- result: {report['summary']}", "",
             "| step | status | seconds | note |", "|---|---|---:|---|"]
    for o in report["steps"]:
        lines.append(f"| {o['name']} | {o['status']} | {o['seconds']:.1f} | {o['note']} |")
    for o in report["steps"]:
        if o["output_tail"]:
            lines += ["", f"## {o['name']}", "", f"`{o['command']}`", "", "```",
                      o["output_tail"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str, device: dict, budget_s: float, used_s: float,
                 outcomes: list[Outcome]) -> dict:
    """Writes gpu_check.json and gpu_check.md under out_dir (each atomically); returns the
    report."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(), "device": device, "budget_s": budget_s, "used_s": used_s,
        "summary": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing run",
        "steps": [dataclasses.asdict(o) for o in outcomes],
    }
    atomic_write(os.path.join(out_dir, "gpu_check.json"),
                 lambda f: json.dump(report, f, indent=1, default=str))
    atomic_write(os.path.join(out_dir, "gpu_check.md"), lambda f: f.write(render_markdown(report)))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="wall-clock budget of all steps together (default 480)")
    parser.add_argument("--out", default="gpu_check_report",
                        help="folder of gpu_check.md and gpu_check.json")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the steps and their timeouts; run nothing")
    args = parser.parse_args(argv)

    device = device_summary()
    steps = plan(sanitizer=find_sanitizer())
    print(f"device: {device.get('device', 'no CUDA device')}"
          + (f" (capability {device['capability']}, {device['device_count']} visible)"
             if device["cuda_available"] else ""))
    print(f"extension: built={device['extension']['extension']} "
          f"cuda={device['extension']['cuda']} arch={device['extension']['cuda_arch']}")
    if find_sanitizer() is None:
        print("compute-sanitizer: not found (its steps are left out)")
    if args.dry_run or not device["cuda_available"]:
        if not device["cuda_available"]:
            print("no CUDA device: nothing is run. The steps a GPU run would take:")
        for s in steps:
            print(f"  {s.name:40s} timeout {s.timeout_s:4.0f} s  {' '.join(s.argv)}")
        print(f"budget {args.budget_s:.0f} s; sum of timeouts "
              f"{sum(s.timeout_s for s in steps):.0f} s")
        return 0 if args.dry_run else 2
    if not device["extension"]["cuda"]:
        print("pytal._C was built without CUDA kernels: build it with CUDA first")
        return 2
    start = time.monotonic()
    outcomes = run_plan(steps, args.budget_s)
    report = write_report(args.out, device, args.budget_s, time.monotonic() - start, outcomes)
    print(f"{report['summary']}; report: {os.path.join(args.out, 'gpu_check.md')}")
    return 0 if all(o.status in ("passed", "skipped") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
