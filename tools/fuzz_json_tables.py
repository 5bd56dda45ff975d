"""Coverage-guided fuzzing of the compiled JSON walkers (``pytal._tables``) with atheris.

Every input is checked against the Python walkers, which are the specification: both must give
the same arrays or raise the same, documented error (AnnotationError / ValueError), and the
compiled walker must never crash. Inputs are, by their first byte, either JSON text (mutated
from a seed corpus of real-looking files) or the choice sequence of the hypothesis strategies
of tests/json_documents.py (documents json.loads cannot give: tuples, numpy scalars, dict
subclasses, ints beyond 2**53).

The compiled walker fuzzed is a copy of ``pytal._tables`` built from csrc/tables with gcc's
comparison tracing, under build/fuzz/ (libFuzzer takes gcc's comparisons but not its edge
coverage, so the search is guided by the Python walkers' coverage and the C++ comparisons).
``--replay`` then runs a corpus through a build with AddressSanitizer and gcov (libasan
preloaded) and prints the line and branch coverage of csrc/tables; run it on the corpus and on
any crash file.

Not part of the test suite (atheris is no pytal dependency: ``pip install atheris``)::

    python tools/fuzz_json_tables.py build/fuzz/corpus -max_total_time=1800
    python tools/fuzz_json_tables.py --replay build/fuzz/corpus

Any crash it finds is kept as a regression test in tests/test_properties_json.py.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = sorted(glob.glob(os.path.join(ROOT, "csrc", "tables", "*.cpp")))
BUILD = os.path.join(ROOT, "build", "fuzz")
FUZZ_FLAGS = ["-O1", "-g", "-fsanitize-coverage=trace-cmp"]
REPLAY_FLAGS = ["-O0", "-g", "-fno-omit-frame-pointer", "-fsanitize=address", "--coverage"]


def build(kind: str, flags: list[str], libraries: tuple[str, ...] = ()) -> str:
    """Compile csrc/tables into build/fuzz/<kind>/_tables<suffix> with ``flags``, linked with
    ``libraries`` (paths); its path."""
    out_dir = os.path.join(BUILD, kind)
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, "_tables" + sysconfig.get_config_var("EXT_SUFFIX"))
    objects = []
    sources = list(SOURCES)
    if "-fsanitize-coverage=trace-cmp" in flags:
        # gcc also traces float comparisons, which libFuzzer does not take: no-op hooks.
        stubs = os.path.join(out_dir, "float_cmp_hooks.cpp")
        with open(stubs, "w") as f:
            f.write('extern "C" void __sanitizer_cov_trace_cmpf(float, float) {}\n'
                    'extern "C" void __sanitizer_cov_trace_cmpd(double, double) {}\n')
        sources.append(stubs)
    for source in sources:
        obj = os.path.join(out_dir, os.path.splitext(os.path.basename(source))[0] + ".o")
        subprocess.run(["g++", "-std=c++17", "-fPIC", "-Wall", *flags,
                        "-I", sysconfig.get_paths()["include"], "-I", os.path.join(ROOT, "csrc"),
                        "-c", source, "-o", obj], check=True)
        objects.append(obj)
    subprocess.run(["g++", "-shared", *flags, *objects, *libraries, "-o", target], check=True)
    return target


def load_walker(path: str) -> None:
    """Make ``pytal.io.json_tables`` use the compiled module at ``path``."""
    spec = importlib.util.spec_from_file_location("_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from pytal.io import json_tables
    json_tables._tables = module


def seed_corpus(directory: str) -> None:
    """Seed inputs: slices of the real annotation files and a few submissions, as JSON text."""
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return
    annotations = os.path.join(ROOT, "..", "shared", "data", "annotations")
    seeds = []
    for name in ("thumos14.json", "activitynet13.json"):
        path = os.path.join(annotations, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                database = json.load(f)["database"]
            for start in (0, 50, 300):
                part = dict(list(database.items())[start:start + 3])
                seeds.append({"database": part})
    from json_documents import ground_truth
    seeds.append({"database": ground_truth, "results": {
        "v1": [{"label": "A", "score": 0.9, "segment": [0.5, 1.0]},
               {"label": "B", "score": 1, "segment": [2, 4.5]}],
        "v2": [], "elsewhere": [{"label": "Z", "score": 0.1, "segment": [0, 1]}]}})
    seeds.append({"database": {"a": {"subset": "s", "annotations": [
        {"segment": [1, 2], "label": ["A", "B"], "label_id": [0, 1]}]}}})
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed{i}"), "wb") as f:
            f.write(b"{" + json.dumps(seed).encode())   # first byte: JSON mode


def make_target():
    """The function atheris calls with each input."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    import json_documents as docs
    from pytal.io import AnnotationError

    @settings(database=None, deadline=None)
    @given(database=docs.databases, subset=st.sampled_from(docs.SUBSETS + ("unknown",)),
           results=docs.results_documents)
    def structured(database, subset, results):
        check(database, subset, results)

    def check(database, subset, results):
        docs.check_walkers_agree(docs.instances(database, subset, True),
                                 docs.instances(database, subset, False), (AnnotationError,))
        docs.check_walkers_agree(docs.predictions(results, True),
                                 docs.predictions(results, False), (ValueError,))

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        if data[0] % 2:
            structured.hypothesis.fuzz_one_input(data[1:])
            return
        try:
            document = json.loads(data[1:])
        except (ValueError, RecursionError):
            return
        if not isinstance(document, dict):
            return
        for subset in ("test", "validation", "s", "t"):
            check(document.get("database"), subset, document.get("results"))

    return test_one_input


def libasan() -> str:
    return subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True,
                          text=True, check=True).stdout.strip()


def replay(paths: list[str]) -> None:
    """Run every input under ``paths`` (files or corpus folders) through the AddressSanitizer +
    gcov build and print csrc/tables' coverage; an error or a sanitizer report fails."""
    inputs = sorted(p for path in paths for p in (
        [os.path.join(path, n) for n in os.listdir(path)] if os.path.isdir(path) else [path]))
    walker = build("replay", REPLAY_FLAGS)
    for gcda in glob.glob(os.path.join(BUILD, "replay", "*.gcda")):
        os.remove(gcda)
    code = ("import sys; sys.path[:0] = [%r, %r]; import fuzz_json_tables as f; "
            "f.load_walker(%r); t = f.make_target()\n"
            "for p in %r:\n"
            "    t(open(p, 'rb').read())\n"
            % (os.path.join(ROOT, "tests"), os.path.dirname(os.path.abspath(__file__)), walker,
               inputs))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": ROOT, "LD_PRELOAD": libasan(),
                        "ASAN_OPTIONS": "detect_leaks=0"})
    objects = sorted(glob.glob(os.path.join(BUILD, "replay", "*.o")))
    result = subprocess.run(["gcov", "-b", "-o", os.path.join(BUILD, "replay"), *objects],
                            capture_output=True, text=True, cwd=os.path.join(BUILD, "replay"))
    print(f"{len(inputs)} inputs replayed under AddressSanitizer, no error; gcov of csrc/tables:")
    shown = False
    for line in result.stdout.splitlines():
        if line.startswith("File "):
            shown = "csrc/tables" in line
        if shown and line.strip():
            print(line)
    print(f"(line by line: {os.path.join(BUILD, 'replay')}/*.gcov)")


def main() -> None:
    sys.path[:0] = [os.path.join(ROOT, "tests"), ROOT]
    if sys.argv[1:2] == ["--replay"]:
        replay(sys.argv[2:])
        return
    import atheris
    # libFuzzer's comparison hooks live in atheris' core module (loaded privately by Setup):
    # the walker links to that very file, so the loader shares the one copy.
    core = glob.glob(os.path.join(os.path.dirname(atheris.__file__), "core_with_libfuzzer*.so"))
    walker = build("fuzz", FUZZ_FLAGS, tuple(core))
    import pytal  # noqa: F401 (the package itself is not instrumented)
    with atheris.instrument_imports(include=["pytal.io"]):
        import pytal.io  # noqa: F401
    corpus = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus:
        seed_corpus(corpus)
    atheris.Setup(sys.argv, make_target())
    load_walker(walker)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
