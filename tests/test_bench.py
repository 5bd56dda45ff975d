"""pytal.ops.force_backend and the end-to-end benchmark (pytal.bench, ``pytal bench``) on a
tiny model; no timing is asserted."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from pytal import cli
from pytal.bench import OpCounter, run_end_to_end
from pytal.ops import _backend, force_backend, forced_backend, gmg

# cltdr_gmg_small shrunk: 16-d input, 64-step crops, batch of 2, fewer candidates.
TINY = ("dataset.input_dim=16", "dataset.max_seq_len=64", "train.batch_size=2",
        "eval.pre_nms_topk=100", "eval.max_seg_num=50")
TINY_ARGS = dict(config="cltdr_gmg_small", device="cpu", repeats=1, warmup=0, train_length=64,
                 infer_lengths=(40, 64), overrides=TINY)


def _gmg_inputs():
    gen = torch.Generator().manual_seed(0)
    shapes = [(1, 16, 32), (2, 16), (2, 16), (2, 16), (2, 16), (16, 3), (16,), (16,), (16,)]
    return [torch.randn(s, generator=gen) for s in shapes]


# ------------------------------------------------------------------------------ force_backend

def test_force_backend_sets_and_restores():
    cpu = torch.device("cpu")
    assert forced_backend() is None
    with force_backend("reference"):
        assert forced_backend() == "reference"
        assert _backend.choose_backend("gmg", cpu, None) == "reference"
        with force_backend(None):                          # nested: automatic again
            assert forced_backend() is None
        assert forced_backend() == "reference"
    assert forced_backend() is None
    with pytest.raises(KeyError):
        with force_backend("reference"):
            raise KeyError("boom")
    assert forced_backend() is None                        # restored on error too


def test_force_backend_rejects_unknown_names():
    with pytest.raises(ValueError, match="force_backend: backend"):
        with force_backend("cuda"):
            pass


def test_forcing_a_missing_extension_raises(monkeypatch):
    monkeypatch.setattr(_backend, "_extension", None)
    with force_backend("extension"), pytest.raises(RuntimeError, match="backend='extension'"):
        gmg(*_gmg_inputs())


@pytest.mark.extension
def test_force_backend_decides_what_runs_and_the_argument_wins():
    inputs = _gmg_inputs()
    with OpCounter() as ops, force_backend("reference"):
        ref = gmg(*inputs)
    assert not ops.counts
    with OpCounter() as ops, force_backend("reference"):
        ext = gmg(*inputs, backend="extension")           # an explicit argument wins
    assert ops.counts == {"gmg": 1}
    torch.testing.assert_close(ext, ref, rtol=1e-5, atol=1e-5)
    with OpCounter() as ops, force_backend("extension"):
        gmg(*inputs)
    assert ops.counts == {"gmg": 1}


# -------------------------------------------------------------------------------- benchmark

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``pytal bench`` on the tiny model: (exit status, printed report, --json dict)."""
    out = tmp_path_factory.mktemp("bench") / "e2e.json"
    threads = torch.get_num_threads()
    argv = ["bench", "--config", "cltdr_gmg_small", "--device", "cpu", "--repeats", "1",
            "--warmup", "0", "--threads", "1", "--train-length", "64", "--infer-lengths",
            "40,64", "--override", *TINY, "--json", str(out)]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        try:
            status = cli.main(argv)
        finally:
            torch.set_num_threads(threads)
    return status, printed.getvalue(), json.loads(out.read_text())


@pytest.fixture(scope="module")
def tiny_result(tiny_run):
    return tiny_run[2]


@pytest.mark.extension
def test_bench_result_structure(tiny_result):
    r = tiny_result
    json.dumps(r)                                          # JSON-ready
    assert r["device"] == "cpu" and r["threads"] == 1 and r["input_dim"] == 16
    assert r["train"]["batch"] == 2 and r["train"]["length"] == 64
    assert r["inference"]["lengths"] == [40, 64]
    for part in ("train", "inference"):
        for backend in ("extension", "reference"):
            entry = r[part][backend]
            assert len(entry["samples_s"]) == 1 and entry["median_s"] > 0
            assert entry["peak_memory_mib"] is None        # CPU: not measured
        assert r[part]["speedup"] > 0
        assert r[part]["check"]["match"], r[part]["check"]
    assert len(r["inference"]["extension"]["count"]) == 2


@pytest.mark.extension
def test_bench_used_each_backend(tiny_result):
    train, infer = tiny_result["train"], tiny_result["inference"]
    assert train["reference"]["ops"] == {} and infer["reference"]["ops"] == {}
    assert {"gmg", "gmg_backward", "trident_decode_index",
            "trident_decode_index_backward"} <= set(train["extension"]["ops"])
    assert {"gmg", "trident_decode_index"} <= set(infer["extension"]["ops"])
    assert {"soft_nms", "soft_nms_top_k"} & set(infer["extension"]["ops"])
    assert forced_backend() is None                        # the benchmark left no override


@pytest.mark.parametrize("kwargs, match", [
    (dict(repeats=0), "repeats"), (dict(warmup=-1), "warmup"), (dict(train_length=0), "train_length"),
    (dict(infer_lengths=()), "infer_lengths"), (dict(threads=0), "threads"),
    (dict(device="mps"), "device")])
def test_bench_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_end_to_end(**{**TINY_ARGS, **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_bench_cuda_without_gpu_is_an_error(capsys):
    assert cli.main(["bench", "--device", "cuda"]) == 1
    assert "device" in capsys.readouterr().err


@pytest.mark.extension
def test_pytal_bench_prints_the_report(tiny_run):
    status, text, _ = tiny_run
    assert status == 0
    assert "training step (B=2, T=64, C_in=16)" in text and "inference per video" in text
    assert "MISMATCH" not in text and text.count(": OK") == 2


@pytest.mark.extension
def test_bench_backends_agree_on_the_values_themselves(tiny_result):
    """The two backends' outputs, compared here rather than through the report's own check."""
    train, infer = tiny_result["train"], tiny_result["inference"]
    ext, ref = train["extension"]["loss"], train["reference"]["loss"]
    assert ref > 0 and ext == pytest.approx(ref, rel=1e-4)
    assert infer["extension"]["count"] == infer["reference"]["count"]
    assert sum(infer["reference"]["count"]) > 0
    for got, want in zip(infer["extension"]["top_scores"], infer["reference"]["top_scores"]):
        assert len(got) == len(want) > 0 and got == pytest.approx(want, abs=1e-4)
