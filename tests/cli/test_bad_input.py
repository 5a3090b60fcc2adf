"""Every command on malformed input: exit code 2, one stderr line starting ``error:``, no traceback, no new file.

Each case writes its inputs into an empty working directory, runs ``qfl`` through its entry point in this process
and compares the directory (and ``$HOME``) before and after. The cases cover every command and the kinds of bad
input seen from new users: missing and malformed files, wrong kinds and types, values out of range, NaN and
infinity, sizes that cannot fit, output folders that are files, corrupt resume state and bad job parameter files.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ..conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

QFL = 'kind = "qfl"\nmodalities = 2\nfeatures = 1\ndegree = 1\nobservables = 2\n'
MMA = 'kind = "mma"\nmodalities = 2\nqubits_per_modality = 1\n'
TRAIN = """kind = "train"
name = "t"
[data]
name = "synthetic_parity"
options = {num_modalities = 2, features = 2, n = 200}
[optim]
epochs = 1
[[models]]
name = "qfl"
degree = 1
observables = 2
[[models]]
name = "concat"
"""
STUDY = """kind = "noise_study"
name = "s"
scales = [0.0]
mitigations = ["none"]
seeds = [0]
workers = 1
[noise]
backend = "fake_manila"
[expectation]
circuits = ["c.toml"]
bindings = 2
"""
FED = """kind = "federated"
name = "f"
clients = 2
rounds = 1
[data]
name = "synthetic_parity"
options = {num_modalities = 2, features = 2, n = 200}
[model]
name = "mma"
features = 1
"""
JOB = """kind = "job"
name = "j"
backend = "fake_manila"
mode = "job"
precision = 0.1
[circuit]
spec = "c.toml"
bindings = 2
"""


def edit(text: str, **changes: str) -> str:
    """Replace the value of ``key = ...`` lines (first occurrence) or append the key at the top level."""
    lines = text.splitlines()
    for key, value in changes.items():
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}" if value is not None else ""
                break
        else:
            lines.insert(1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def section(text: str, name: str, body: str) -> str:
    """Append ``body`` to table ``[name]`` (created at the end if absent)."""
    if f"[{name}]" in text:
        return text.replace(f"[{name}]\n", f"[{name}]\n{body}\n", 1)
    return text + f"[{name}]\n{body}\n"


@dataclass
class Case:
    id: str
    argv: list[str]
    files: dict[str, str | bytes | Callable[[Path], None]] = field(default_factory=dict)
    expect: str = ""  # a fragment the error line must contain (lower case)


def _npy(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array, allow_pickle=True)


def _model_pt(payload: object) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import torch

        torch.save(payload, path)
    return make


CASES: list[Case] = []


def case(id: str, argv: list[str], expect: str = "", files: dict | None = None,
         **named: str | bytes | Callable[[Path], None]) -> None:
    """A case; ``named`` files spell ``/`` as ``__`` and ``.`` as ``_DOT_`` (``files`` takes any path)."""
    paths = {k.replace("__", "/").replace("_DOT_", "."): v for k, v in named.items()} | (files or {})
    CASES.append(Case(id, argv, paths, expect))


# --- circuit specs: qfl circuit build -------------------------------------------------------------------------------
B = ["circuit", "build", "c.toml", "--out-dir", "out"]
case("spec-missing", ["circuit", "build", "nope.toml"], "not found")
case("spec-is-folder", ["circuit", "build", "d"], "not found", d__keep=lambda p: None)
case("spec-bad-toml", B, "not valid toml", c_DOT_toml="kind = = 1\n")
case("spec-binary", B, "", c_DOT_toml=b"\xff\xfe\x00\x01")
case("spec-empty", B, "kind", c_DOT_toml="")
case("kind-missing", B, "kind", c_DOT_toml="modalities = 2\n")
case("kind-list", B, "kind must be a string", c_DOT_toml='kind = ["qfl"]\n')
case("kind-number", B, "kind must be a string", c_DOT_toml="kind = 3\n")
case("kind-table", B, "kind must be a string", c_DOT_toml="[kind]\na = 1\n")
case("kind-unknown", B, "unknown kind", c_DOT_toml='kind = "qnn"\n')
case("unknown-key", B, "unknown key", c_DOT_toml=QFL + "modality = 3\n")
for key, value, frag in [
    ("modalities", "0", "greater than or equal"), ("modalities", "-3", "greater than or equal"),
    ("modalities", '"3"', "not a string"), ("modalities", "2.5", "integer"), ("modalities", "true", "true/false"),
    ("modalities", "100000", "limit"), ("modalities", "99999999999999999", "limit"),
    ("features", "true", "true/false"), ("features", "0", "greater"), ("degree", "1000000000", "limit"),
    ("degree", "0", "greater"), ("layers", "100000", "limit"), ("layers", "[1]", "integer"),
    ("entanglement", '"ring"', "input should be"), ("entanglement", "1", "input should be"),
    ("observables", "0", "greater"), ("observables", "1000000", "less than"),
    ("observable_seed", "-1", "greater"), ("observable_seed", "1e30", "integer"),
    ("observable_seed", "18446744073709551616", "less than"),
]:
    case(f"qfl-{key}-{value}", B, frag, c_DOT_toml=edit(QFL, **{key: value}))
for key, value, frag in [
    ("modalities", "30", "limit"), ("qubits_per_modality", "0", "greater"), ("qubits_per_modality", "25", "limit"),
    ("entangler", '"ring"', "input should be"), ("context", '"one"', "input should be"),
    ("readout", '"x"', "input should be"), ("fusion_layers", "true", "true/false"),
    ("encoding_layers", "100000", "limit"),
]:
    case(f"mma-{key}-{value}", B, frag, c_DOT_toml=edit(MMA, **{key: value}))
case("present-on-qfl", B + ["--present", "1,0"], "mma specs only", c_DOT_toml=QFL)
case("present-count", B + ["--present", "1,0,1"], "flags", c_DOT_toml=MMA)
case("present-letters", B + ["--present", "1,x"], "flags", c_DOT_toml=MMA)
case("draw-not-png", B + ["--draw", "x.jpg"], ".png", c_DOT_toml=QFL)
case("draw-under-file", B + ["--draw", "afile/x.png"], "is a file", c_DOT_toml=QFL, afile="")
case("draw-is-folder", B + ["--draw", "d.png"], "is a folder", c_DOT_toml=QFL, d_DOT_png__keep="")
case("out-dir-is-file", ["circuit", "build", "c.toml", "--out-dir", "afile"], "is a file", c_DOT_toml=QFL, afile="")
case("out-dir-under-file", ["circuit", "build", "c.toml", "--out-dir", "afile/sub"], "is a file", c_DOT_toml=QFL,
     afile="")

# --- transpile-report ----------------------------------------------------------------------------------------------
T = ["transpile-report", "c.toml", "--isa-dir", "isa", "--results-dir", "res"]
case("tr-unknown-fake", T + ["-b", "fake_manilla"], "unknown backend", c_DOT_toml=QFL)
case("tr-generic-0", T + ["-b", "generic_0"], "at least 1 qubit", c_DOT_toml=QFL)
case("tr-generic-huge", T + ["-b", "generic_100000"], "at most", c_DOT_toml=QFL)
case("tr-ibm-no-account", T + ["-b", "ibm_nowhere"], "no ibm quantum account", c_DOT_toml=QFL)
case("tr-level-4", T + ["-O", "4"], "less than or equal", c_DOT_toml=QFL)
case("tr-seeds-0", T + ["--seeds", "0"], "greater", c_DOT_toml=QFL)
case("tr-seeds-huge", T + ["--seeds", "1000000000"], "less than", c_DOT_toml=QFL)
case("tr-seeds-text", T + ["--seeds", "many"], "", c_DOT_toml=QFL)
case("tr-record-suffix", T + ["--record", "r.txt"], ".json", c_DOT_toml=QFL)
case("tr-plot-suffix", T + ["--plot", "r.jpg"], ".png", c_DOT_toml=QFL)
case("tr-isa-dir-file", ["transpile-report", "c.toml", "--isa-dir", "afile"], "is a file", c_DOT_toml=QFL, afile="")
case("tr-results-file", ["transpile-report", "c.toml", "--results-dir", "afile", "--isa-dir", "i"], "is a file",
     c_DOT_toml=QFL, afile="")
case("tr-record-under-file", T + ["--record", "afile/r.json"], "is a file", c_DOT_toml=QFL, afile="")
case("tr-too-wide", T + ["-b", "fake_manila"], "qubits", c_DOT_toml=edit(QFL, modalities="40"))

# --- train / compare -----------------------------------------------------------------------------------------------
R = ["train", "t.toml", "--results-dir", "res"]
case("train-missing", ["train", "nope.toml"], "not found")
case("train-results-file", ["train", "t.toml", "--results-dir", "afile"], "is a file", t_DOT_toml=TRAIN, afile="")
case("train-no-data", R, "data", t_DOT_toml='kind = "train"\n[[models]]\nname = "qfl"\n')
case("train-no-models", R, "models", t_DOT_toml=TRAIN.split("[[models]]")[0])
case("train-both-model-forms", R, "not both", t_DOT_toml=TRAIN + '[model]\nname = "lmf"\n')
case("train-unknown-data", R, "unknown data set", t_DOT_toml=TRAIN.replace("synthetic_parity", "npzz"))
case("train-data-bad-args", R, "bad arguments", t_DOT_toml=TRAIN.replace("n = 200", "rows = 200"))
case("train-data-n-nan", R, "finite", t_DOT_toml=TRAIN.replace("n = 200", "n = nan"))
case("train-data-n-inf", R, "finite", t_DOT_toml=TRAIN.replace("n = 200", "n = inf"))
case("train-data-n-float", R, "not a valid int", t_DOT_toml=TRAIN.replace("n = 200", "n = 200.5"))
case("train-data-n-huge", R, "limit", t_DOT_toml=TRAIN.replace("n = 200", "n = 1000000000000"))
case("train-data-modalities-bool", R, "not a valid int",
     t_DOT_toml=TRAIN.replace("num_modalities = 2", "num_modalities = true"))
case("train-model-unknown", R, "name", t_DOT_toml=TRAIN.replace('name = "concat"', 'name = "transformer"'))
case("train-model-features-bool", R, "true/false", t_DOT_toml=TRAIN.replace("degree = 1", "degree = 1\nfeatures = true"))
case("train-model-degree-huge", R, "limit", t_DOT_toml=TRAIN.replace("degree = 1", "degree = 1000000000"))
case("train-model-qfl-too-many-modalities", R, "limit",
     t_DOT_toml=TRAIN.replace("num_modalities = 2, features = 2, n = 200",
                              "num_modalities = 40000, features = 1, n = 20").replace("degree = 1", "degree = 1\nfeatures = 16"))
case("train-model-hidden-huge", R, "less than",
     t_DOT_toml=TRAIN.replace('name = "concat"', 'name = "concat"\nencoder_hidden = 1000000000'))
case("train-duplicate-labels", R, "distinct", t_DOT_toml=TRAIN.replace('name = "concat"', 'name = "qfl"'))
case("train-name-slash", R, "pattern", t_DOT_toml=TRAIN.replace('name = "t"', 'name = "../t"'))
case("train-seed-negative", R, "greater", t_DOT_toml=TRAIN.replace('name = "t"', 'name = "t"\nseed = -1'))
case("train-fractions", R, "10%", t_DOT_toml=TRAIN.replace("[data]\n", "[data]\nval_fraction = 0.5\ntest_fraction = 0.45\n"))
case("train-lr-inf", R, "finite", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 1\nlr = inf"))
case("train-lr-nan", R, "finite", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 1\nlr = nan"))
case("train-lr-negative", R, "greater", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 1\nlr = -0.1"))
case("train-epochs-0", R, "greater", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 0"))
case("train-batch-bool", R, "true/false", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 1\nbatch_size = true"))
case("train-monitor", R, "input should be", t_DOT_toml=TRAIN.replace("epochs = 1", 'epochs = 1\nmonitor = "auc"'))
case("train-focal-alpha-nan", R, "finite", t_DOT_toml=TRAIN + '[loss]\nname = "focal"\nalpha = [nan, 1.0]\n')
case("train-focal-gamma-inf", R, "finite", t_DOT_toml=TRAIN + '[loss]\nname = "focal"\ngamma = inf\n')
case("train-loss-name", R, "input should be", t_DOT_toml=TRAIN + '[loss]\nname = "hinge"\n')
case("train-exec-estimator", R, "input should be", t_DOT_toml=TRAIN + '[execution]\nestimator = "qpu"\n')
case("train-exec-autograd-aer", R, "autograd", t_DOT_toml=TRAIN + '[execution]\nestimator = "aer"\n')
case("train-exec-shots-exact", R, "need estimator", t_DOT_toml=TRAIN + "[execution]\nshots = 100\n")
QPU = TRAIN.split("[[models]]\nname = \"concat\"")[0] + '[execution]\nestimator = "runtime"\nbackend = "fake_manila"\ngradient = "spsa"\nsteps = 1\n'
case("qpu-no-backend", R, "needs backend", t_DOT_toml=QPU.replace('backend = "fake_manila"\n', ""))
case("qpu-autograd", R, "autograd", t_DOT_toml=QPU.replace('gradient = "spsa"', 'gradient = "autograd"'))
case("qpu-dtype-precision", R, "target standard error", t_DOT_toml=QPU + 'precision = "complex64"\n')
case("qpu-precision-and-shots", R, "not both", t_DOT_toml=QPU + "precision = 0.05\nshots = 100\n")
case("qpu-precision-tiny", R, "from 0.001 to 1", t_DOT_toml=QPU + "precision = 0.00001\n")
case("qpu-session-no-max-time", R, "max_time", t_DOT_toml=QPU + 'mode = "session"\n')
case("qpu-noise", R, "backend's own noise", t_DOT_toml=QPU + 'noise = "n.toml"\n')
case("qpu-rem-ours", R, "trex", t_DOT_toml=QPU + 'mitigation = {techniques = ["rem"]}\n')
case("qpu-budget-negative", R, "greater than", t_DOT_toml=QPU + "max_qpu_seconds = -5\n")
case("qpu-budget-nan", R, "finite", t_DOT_toml=QPU + "max_qpu_seconds = nan\n")
case("qpu-steps-bool", R, "true/false", t_DOT_toml=QPU + "steps = true\n".replace("steps", "job_retries"))
case("qpu-backend-unknown", R, "fake_nowhere", t_DOT_toml=QPU.replace("fake_manila", "fake_nowhere"))
case("qpu-init-missing", R, "no such folder", t_DOT_toml=QPU + 'init_from = "results/none"\n')
case("qpu-classical-model", R, "classical",
     t_DOT_toml=QPU.replace('name = "qfl"\ndegree = 1\nobservables = 2', 'name = "concat"'))
case("qpu-budget-exceeded", R, "exceeds max_qpu_seconds", t_DOT_toml=QPU + "max_qpu_seconds = 0.001\n")
case("qpu-runtime-key-exact", R, "applies to estimator 'runtime' only", t_DOT_toml=TRAIN + "[execution]\nsteps = 3\n")
case("qpu-number-precision-exact", R, "needs estimator 'runtime'", t_DOT_toml=TRAIN + "[execution]\nprecision = 0.05\n")
case("qpu-from-exact-spec", R + ["--from", "res"], "--from starts a device run", t_DOT_toml=TRAIN)
case("qpu-dry-run-exact-spec", R + ["--dry-run"], "costs no qpu time", t_DOT_toml=TRAIN)
case("compare-one-model", ["compare", "t.toml", "--results-dir", "res"], "at least two",
     t_DOT_toml=TRAIN.split("[[models]]\nname = \"concat\"")[0])
case("compare-seeds-text", ["compare", "t.toml", "--results-dir", "res", "--seeds", "a,b"], "--seeds",
     t_DOT_toml=TRAIN)
case("compare-seeds-negative", ["compare", "t.toml", "--results-dir", "res", "--seeds", "-1"], "--seeds",
     t_DOT_toml=TRAIN)
case("compare-seeds-repeat", ["compare", "t.toml", "--results-dir", "res", "--seeds", "1,1"], "--seeds",
     t_DOT_toml=TRAIN)
case("compare-results-file", ["compare", "t.toml", "--results-dir", "afile"], "is a file", t_DOT_toml=TRAIN,
     afile="")

N = ["noise-study", "s.toml", "--results-dir", "res"]
F = ["federated", "f.toml", "--results-dir", "res"]
S = ["submit", "j.toml", "--records-dir", "rec"]
# cases a new-user probe found: loader options of the wrong type, sizes that only the data or batch reveal
DATA = TRAIN.replace('name = "synthetic_parity"\noptions = {num_modalities = 2, features = 2, n = 200}', "{data}")
case("data-views-number", R, "not a valid", t_DOT_toml=DATA.format(data='name = "uci_mfeat"\noptions = {views = 5}'))
case("data-seed-negative", R, "seed", t_DOT_toml=DATA.format(data='name = "synthetic_parity"\noptions = {seed = -1}'))
case("data-seed-string", R, "not a valid",
     t_DOT_toml=DATA.format(data='name = "synthetic_parity"\noptions = {seed = "abc"}'))
case("data-seed-float", R, "not a valid", t_DOT_toml=DATA.format(data='name = "synthetic_parity"\noptions = {seed = 1.5}'))
case("data-path-number", R, "not a valid", t_DOT_toml=DATA.format(data='name = "ptbxl"\noptions = {path = 123}'))
case("data-split-list", R, "not a valid",
     t_DOT_toml=DATA.format(data='name = "ptbxl"\noptions = {path = ".", split = ["train"]}'))
case("train-mma-batch-state", R, "amplitudes", t_DOT_toml=TRAIN.replace(
    'name = "qfl"\ndegree = 1\nobservables = 2', 'name = "mma"\nfeatures = 12'))
case("train-lmf-parameters", R, "parameters", t_DOT_toml=TRAIN.replace(
    'name = "concat"', 'name = "lmf"\nfeatures = 65536\nrank = 65536\nout = 65536'))
case("train-lr-huge", R, "less than", t_DOT_toml=TRAIN.replace("epochs = 1", "epochs = 1\nlr = 1e308"))
case("train-aer-shots-huge", R, "less than", t_DOT_toml=TRAIN + '[execution]\nestimator = "aer"\n'
     'gradient = "param_shift"\nshots = 10000000\n')
case("train-label-slash", R, "pattern", t_DOT_toml=TRAIN.replace('name = "concat"', 'name = "concat"\nlabel = "a/b"'))
case("train-name-dotdot", R, "pattern", t_DOT_toml=TRAIN.replace('name = "t"', 'name = ".."'))
case("study-bool-string", N, "true or false", s_DOT_toml=edit(STUDY, idle_noise='"yes"'), c_DOT_toml=QFL)
case("study-scale-huge", N, "scales", s_DOT_toml=edit(STUDY, scales="[1e308]"), c_DOT_toml=QFL)
case("study-zne-factor-huge", N, "scale factors", s_DOT_toml=edit(STUDY, mitigations='["zne"]',
     scale_factors="[1.0, 1000000000.0]"), c_DOT_toml=QFL)
case("study-observables-empty", N, "at least 1", s_DOT_toml=STUDY + "observables = []\n", c_DOT_toml=QFL)
case("study-parametric-is-backend", N, "backend noise spec",
     s_DOT_toml=STUDY.replace("[noise]\n", '[noise]\nparametric = "n.toml"\n'), c_DOT_toml=QFL,
     n_DOT_toml='kind = "backend"\nbackend = "fake_manila"\n')
case("study-plateau-samples", N, "less than", s_DOT_toml=STUDY + "[plateau]\nsamples = 100000\n", c_DOT_toml=QFL)
case("study-backend-too-small", N, "needs 6 qubits", s_DOT_toml=STUDY, c_DOT_toml=MMA.replace(
    "modalities = 2\nqubits_per_modality = 1", "modalities = 3\nqubits_per_modality = 2"))
case("train-focal-alpha-negative", R, "alpha", t_DOT_toml=TRAIN + '[loss]\nname = "focal"\nalpha = -3.0\n')
case("data-leads-number", R, "not a valid",
     t_DOT_toml=DATA.format(data='name = "ptbxl"\noptions = {path = ".", leads = 5}'))
case("data-label-list", R, "not a valid",
     t_DOT_toml=DATA.format(data='name = "cmu_mosei"\noptions = {path = ".", label = []}'))
# own data files (issue: bring your own data): each malformed file is one line naming the problem
def _npz(**arrays: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.savez(path, **arrays)


_Y = np.array([0, 1] * 20)
_A, _B = np.ones((40, 3)), np.ones((40, 2))
NPZ = 'name = "npz"\noptions = {{path = "v.npz"{extra}}}'
for cid, frag, arrays, extra in [
    ("no-y", "no array 'y'", {"a": _A, "b": _B}, ""),
    ("ragged", "shape (39, 2)", {"a": _A, "b": _B[:39], "y": _Y}, ""),
    ("nan", "nan or infinity", {"a": np.where(np.eye(40, 3) > 0, np.nan, 1.0), "y": _Y}, ""),
    ("inf", "nan or infinity", {"a": np.full((40, 3), np.inf), "y": _Y}, ""),
    ("one-class", "only one class", {"a": _A, "y": np.zeros(40, dtype=int)}, ""),
    ("zero-features", "features >= 1", {"a": np.ones((40, 0)), "y": _Y}, ""),
    ("y-2d", "one label per sample", {"a": _A, "y": _Y.reshape(20, 2)}, ""),
    ("y-fractional", "fractional", {"a": _A, "y": np.linspace(0, 1, 40)}, ""),
    ("modality-strings", "not numbers", {"a": np.array([["x"]] * 40), "y": _Y}, ""),
    ("unknown-modality", "modalities must be", {"a": _A, "y": _Y}, ', modalities = ["zz"]'),
    ("mask-shape", "mask must be", {"a": _A, "b": _B, "y": _Y, "mask": np.ones((40, 3))}, ""),
    ("mask-values", "mask must be", {"a": _A, "y": _Y, "mask": np.full((40, 1), 2)}, ""),
    ("split-values", "split values", {"a": _A, "y": _Y, "split": np.array(["train", "tst"] * 20)}, ""),
    ("split-no-val", "no val samples", {"a": _A, "y": _Y, "split": np.array(["train", "test"] * 20)}, ""),
]:
    case(f"npz-{cid}", R, frag, t_DOT_toml=DATA.format(data=NPZ.format(extra=extra)), v_DOT_npz=_npz(**arrays))
case("npz-missing", R, "not found", t_DOT_toml=DATA.format(data=NPZ.format(extra="")))
case("npz-unreadable", R, "cannot read as .npz", t_DOT_toml=DATA.format(data=NPZ.format(extra="")),
     v_DOT_npz=b"not a zip archive")
case("npz-pickled-object", R, "cannot read as .npz", t_DOT_toml=DATA.format(data=NPZ.format(extra="")),
     v_DOT_npz=_npz(a=np.array([{"x": 1}] * 40, dtype=object), y=_Y))
CSV = 'name = "csv"\noptions = {{path = "t.csv", label = "y", modalities = {mods}}}'
_HEAD = "y,a1,a2,b1\n"
_OK = "".join(f"{i % 2},{i}.5,{i},{-i}\n" for i in range(40))
for cid, frag, table, mods in [
    ("no-label", "no label column", "z,a1,a2,b1\n1,2,3,4\n", '{a = "a*"}'),
    ("not-a-number", "line 3, column 'a2': 'abc' is not a number", _HEAD + "0,1,2,3\n1,1,abc,3\n" + _OK,
     '{a = "a*", b = ["b1"]}'),
    ("partly-empty", "line 2, column 'a2': empty cell", _HEAD + "0,1,,3\n" + _OK, '{a = "a*", b = ["b1"]}'),
    ("inf", "line 2, column 'b1': 'inf' is not finite", _HEAD + "0,1,2,inf\n" + _OK, '{a = "a*", b = ["b1"]}'),
    ("empty-label", "line 2, column 'y': empty label", _HEAD + ",1,2,3\n" + _OK, '{a = "a*"}'),
    ("all-empty-row", "line 2: every modality is empty", _HEAD + "0,,,\n" + _OK, '{a = "a*", b = ["b1"]}'),
    ("pattern-matches-nothing", "matches no column", _HEAD + _OK, '{a = "x*"}'),
    ("unknown-column", "no column 'c1'", _HEAD + _OK, '{a = ["c1"]}'),
    ("column-twice", "is in modalities", _HEAD + _OK, '{a = "a*", b = ["a1"]}'),
    ("label-as-feature", "includes the label", _HEAD + _OK, '{a = ["y", "a1"]}'),
    ("one-class", "only one class", _HEAD + "".join(f"0,{i},1,2\n" for i in range(40)), '{a = "a*"}'),
    ("no-rows", "no data rows", _HEAD, '{a = "a*"}'),
    ("empty-file", "cannot read as csv", "", '{a = "a*"}'),
    ("no-modalities", "give modalities", _HEAD + _OK, "{}"),
]:
    case(f"csv-{cid}", R, frag, t_DOT_toml=DATA.format(data=CSV.format(mods=mods)), t_DOT_csv=table)
case("csv-modalities-number", R, "not a valid", t_DOT_toml=DATA.format(data=CSV.format(mods="5")), t_DOT_csv=_OK)
case("loader-module-missing", R, "cannot import", t_DOT_toml=DATA.format(data='name = "no_such_module_qfl:load"'))
case("loader-function-missing", R, "has no function", t_DOT_toml=DATA.format(data='name = "json:no_such"'))
case("loader-returns-other", R, "not a qfl_qiskit.data.multimodaldataset",
     t_DOT_toml=DATA.format(data='name = "os:getcwd"'))
case("loader-raises-when-called", R, "data loader 'plugin_fails:load' failed: runtimeerror: my loader",
     t_DOT_toml=DATA.format(data='name = "plugin_fails:load"'),
     plugin_fails_DOT_py="def load():\n    raise RuntimeError('my loader blew up')\n")
case("npz-path-is-folder", R, "is a folder", t_DOT_toml=DATA.format(data='name = "npz"\noptions = {path = "."}'))
case("npz-sample-with-nothing-present", R, "no modality present", t_DOT_toml=DATA.format(data=NPZ.format(extra="")),
     v_DOT_npz=_npz(a=_A, y=_Y, mask=np.vstack([np.zeros((1, 1)), np.ones((39, 1))])))
case("study-model-data-nan", N, "nan or infinity", s_DOT_toml='kind = "noise_study"\nname = "s"\nexpectation = false\n'
     'plateau = false\nseeds = [0]\nscales = [0.0]\nmitigations = ["none"]\nworkers = 1\n[noise]\n'
     'backend = "fake_manila"\n[model]\ntrain = "t.toml"\n', t_DOT_toml=DATA.format(data=NPZ.format(extra="")),
     v_DOT_npz=_npz(a=np.where(np.eye(40, 3) > 0, np.nan, 1.0), y=_Y))
case("loader-raises-on-import", R, "importing plugin_boom failed", t_DOT_toml=DATA.format(
    data='name = "plugin_boom:load"'), plugin_boom_DOT_py="raise RuntimeError('boom')\n")
case("data-example-unknown", ["data", "example", "iris", "x.csv"], "unknown example")
case("data-example-suffix", ["data", "example", "breast-cancer", "x.txt"], ".csv or .npz")
case("data-inspect-kind", ["data", "inspect", "c.toml"], "has no [data]", c_DOT_toml=QFL)
case("data-inspect-bad-file", ["data", "inspect", "t.toml"], "cannot read as .npz",
     t_DOT_toml=DATA.format(data=NPZ.format(extra="")), v_DOT_npz=b"junk")
case("fed-data-views-number", F, "not a valid", f_DOT_toml=FED.replace(
    'name = "synthetic_parity"\noptions = {num_modalities = 2, features = 2, n = 200}',
    'name = "uci_mfeat"\noptions = {views = 7}'))
case("submit-shots-huge", S, "less than", j_DOT_toml=JOB.replace("precision = 0.1", "shots = 1000000000000000"),
     c_DOT_toml=QFL)
case("submit-precision-tiny", S, "greater than", j_DOT_toml=JOB.replace("precision = 0.1", "precision = 1e-12"),
     c_DOT_toml=QFL)
case("submit-zne-factors-huge", S, "noise_factors", j_DOT_toml=JOB + "[resilience]\nzne_mitigation = true\n"
     "zne = {noise_factors = [1, 1000000000]}\n", c_DOT_toml=QFL)
case("present-all-absent", B + ["--present", "0,0"], "at least one", c_DOT_toml=MMA)

# --- evaluate ------------------------------------------------------------------------------------------------------
E = ["evaluate", "run/qfl", "--backend", "fake_manila"]
case("eval-missing", E, "not found")
case("eval-record-json", ["evaluate", "run/qfl/record.json", "--backend", "fake_manila"], "not a model",
     run__qfl__record_DOT_json="{}")
case("eval-folder-no-model", E, "not found", run__qfl__keep_DOT_txt="")
case("eval-garbage-model", E, "not a model file", run__qfl__model_DOT_pt=b"garbage")
case("eval-model-not-dict", E, "not a model file", run__qfl__model_DOT_pt=_model_pt([1, 2, 3]))
case("eval-model-no-spec", E, "not a model file", run__qfl__model_DOT_pt=_model_pt({"label": "qfl"}))
case("eval-no-backend", ["evaluate", "run/qfl"], "--backend")
case("eval-bad-mitigation", E + ["--mitigation", "zne+magic"], "mitigation", run__qfl__model_DOT_pt=b"x")
case("eval-shots-1", E + ["--shots", "1"], "")
case("eval-transpile-seeds-huge", E + ["--transpile-seeds", "100000"], "")
case("eval-seed-negative", E + ["--seed", "-1"], "")
case("eval-noise-missing", ["evaluate", "run/qfl", "--noise", "n.toml"], "not found")
case("eval-noise-kind", ["evaluate", "run/qfl", "--noise", "n.toml"], "unknown kind", n_DOT_toml='kind = "x"\n')
case("eval-noise-gate-time", ["evaluate", "run/qfl", "--noise", "n.toml"], "less than",
     n_DOT_toml='kind = "parametric"\ndepolarizing_1q = 0.001\ndepolarizing_2q = 0.01\ngate_time_1q_ns = 1e12\n')
case("eval-noise-gate-name", ["evaluate", "run/qfl", "--noise", "n.toml"], "gate names",
     n_DOT_toml='kind = "parametric"\ndepolarizing_1q = 0.001\ndepolarizing_2q = 0.01\ngates_1q = ["sx", ""]\n')
case("eval-noise-nan", ["evaluate", "run/qfl", "--noise", "n.toml"], "finite",
     n_DOT_toml='kind = "backend"\nbackend = "fake_manila"\nscale = nan\n')

# --- noise-study ---------------------------------------------------------------------------------------------------
N = ["noise-study", "s.toml", "--results-dir", "res"]
case("study-missing", ["noise-study", "nope.toml"], "not found")
case("study-empty", N, "kind", s_DOT_toml="")
case("study-train-spec", N, "kind", s_DOT_toml=TRAIN)
case("study-scales-nan", N, "finite", s_DOT_toml=edit(STUDY, scales="[nan]"), c_DOT_toml=QFL)
case("study-scales-negative", N, "scales", s_DOT_toml=edit(STUDY, scales="[-1.0]"), c_DOT_toml=QFL)
case("study-scales-repeat", N, "distinct", s_DOT_toml=edit(STUDY, scales="[1.0, 1.0]"), c_DOT_toml=QFL)
case("study-seeds-negative", N, "seeds", s_DOT_toml=edit(STUDY, seeds="[-1]"), c_DOT_toml=QFL)
case("study-seeds-bool", N, "true/false", s_DOT_toml=edit(STUDY, seeds="[true]"), c_DOT_toml=QFL)
case("study-seeds-many", N, "", s_DOT_toml=edit(STUDY, seeds=str(list(range(2000)))), c_DOT_toml=QFL)
case("study-shots-inf", N, "", s_DOT_toml=edit(STUDY, shots="inf"), c_DOT_toml=QFL)
case("study-workers-0", N, "greater", s_DOT_toml=edit(STUDY, workers="0"), c_DOT_toml=QFL)
case("study-cli-workers-0", N + ["--workers", "0"], "", s_DOT_toml=STUDY, c_DOT_toml=QFL)
case("study-mitigation-unknown", N, "mitigation", s_DOT_toml=edit(STUDY, mitigations='["magic"]'), c_DOT_toml=QFL)
case("study-bindings-huge", N, "less than", s_DOT_toml=STUDY.replace("bindings = 2", "bindings = 1000000000"),
     c_DOT_toml=QFL)
case("study-circuit-missing", N, "not found", s_DOT_toml=STUDY)
case("study-circuit-is-train", N, "kind", s_DOT_toml=STUDY, c_DOT_toml=TRAIN)
case("study-circuit-too-big", N, "limit", s_DOT_toml=STUDY, c_DOT_toml=edit(QFL, degree="100000000"))
case("study-backend-unknown", N, "unknown backend", s_DOT_toml=STUDY.replace("fake_manila", "fake_nowhere"),
     c_DOT_toml=QFL)
case("study-parametric-missing", N, "not found",
     s_DOT_toml=STUDY.replace('[noise]\n', '[noise]\nparametric = "p.toml"\n'), c_DOT_toml=QFL)
case("study-model-train-missing", N, "not found", s_DOT_toml=STUDY + '[model]\ntrain = "nope.toml"\n', c_DOT_toml=QFL)
case("study-model-label", N, "label", s_DOT_toml=STUDY + '[model]\ntrain = "t.toml"\nlabel = "lmf"\n',
     c_DOT_toml=QFL, t_DOT_toml=TRAIN)
case("study-plateau-degree-0", N, "degrees", s_DOT_toml=STUDY + "[plateau]\ndegrees = [0]\n", c_DOT_toml=QFL)
case("study-plateau-huge", N, "limit", s_DOT_toml=STUDY + "[plateau]\nmodalities = [100000000]\n", c_DOT_toml=QFL)
case("study-results-file", ["noise-study", "s.toml", "--results-dir", "afile"], "is a file", s_DOT_toml=STUDY,
     c_DOT_toml=QFL, afile="")
CELL = "res/s/cells/expectation-c-s0-none-seed0.json"
case("study-damaged-cell", N, "damaged", s_DOT_toml=STUDY, c_DOT_toml=QFL, files={CELL: '{"id": "trunc'})
case("study-damaged-plateau", N, "damaged plateau", s_DOT_toml=STUDY, c_DOT_toml=QFL,
     res__s__plateau_DOT_json='{"vs_degree": [')
case("study-other-plateau", N, "other [plateau] settings", s_DOT_toml=STUDY, c_DOT_toml=QFL,
     res__s__plateau_DOT_json='{"fingerprint": "x"}')
case("study-other-spec-cell", N, "different study spec", s_DOT_toml=STUDY, c_DOT_toml=QFL,
     files={CELL: '{"id": "x", "fingerprint": "0", "result": {}}'})

# --- federated -----------------------------------------------------------------------------------------------------
F = ["federated", "f.toml", "--results-dir", "res"]
case("fed-missing", ["federated", "nope.toml"], "not found")
case("fed-results-file", ["federated", "f.toml", "--results-dir", "afile"], "is a file", f_DOT_toml=FED, afile="")
case("fed-lr-inf", F, "finite", f_DOT_toml=FED.replace("rounds = 1", "rounds = 1\nlr = inf"))
case("fed-alpha-inf", F, "finite", f_DOT_toml=FED.replace("rounds = 1", "rounds = 1\nalpha = inf"))
case("fed-clients-0", F, "greater", f_DOT_toml=FED.replace("clients = 2", "clients = 0"))
case("fed-min-clients", F, "min_clients", f_DOT_toml=FED.replace("rounds = 1", "rounds = 1\nmin_clients = 5"))
case("fed-data-missing-rate", F, "missing_rate", f_DOT_toml=FED.replace("[data]\n", "[data]\nmissing_rate = 0.3\n"))
case("fed-model-classical", F, "name", f_DOT_toml=FED.replace('name = "mma"', 'name = "lmf"'))
case("fed-garbage-checkpoint", F + ["--resume"], "cannot read checkpoint", f_DOT_toml=FED,
     res__f__checkpoint_DOT_pt=b"not a checkpoint")

# --- submit and jobs -----------------------------------------------------------------------------------------------
S = ["submit", "j.toml", "--records-dir", "rec"]
case("submit-missing", ["submit", "nope.toml"], "not found")
case("submit-kind", S, "kind", j_DOT_toml=TRAIN)
case("submit-no-table", S, "exactly one", j_DOT_toml=JOB.split("[circuit]")[0])
case("submit-session-no-max-time", S, "max_time", j_DOT_toml=JOB.replace('mode = "job"', 'mode = "session"'),
     c_DOT_toml=QFL)
case("submit-precision-0", S, "greater", j_DOT_toml=JOB.replace("precision = 0.1", "precision = 0"), c_DOT_toml=QFL)
case("submit-precision-nan", S, "finite", j_DOT_toml=JOB.replace("precision = 0.1", "precision = nan"),
     c_DOT_toml=QFL)
case("submit-both-precision-shots", S, "not both", j_DOT_toml=JOB.replace("precision = 0.1", "precision = 0.1\nshots = 9"),
     c_DOT_toml=QFL)
case("submit-name-chars", S, "pattern", j_DOT_toml=JOB.replace('name = "j"', 'name = "a b"'), c_DOT_toml=QFL)
case("submit-bindings-huge", S, "less than", j_DOT_toml=JOB.replace("bindings = 2", "bindings = 1000000000"),
     c_DOT_toml=QFL)
case("submit-circuit-missing", S, "not found", j_DOT_toml=JOB)
case("submit-backend-unknown", S, "unknown backend", j_DOT_toml=JOB.replace("fake_manila", "fake_manilla"),
     c_DOT_toml=QFL)
case("submit-records-file", ["submit", "j.toml", "--records-dir", "afile"], "is a file", j_DOT_toml=JOB,
     c_DOT_toml=QFL, afile="")
case("submit-max-qpu-negative", S + ["--max-qpu-seconds", "-1"], "", j_DOT_toml=JOB, c_DOT_toml=QFL)
case("submit-resilience-unknown", S, "unknown runtime estimator option",
     j_DOT_toml=JOB + "[resilience]\nmeasure_mitigatoin = true\n", c_DOT_toml=QFL)
case("submit-resilience-mistyped", S, "measure_mitigation", j_DOT_toml=JOB + '[resilience]\nmeasure_mitigation = 5\n',
     c_DOT_toml=QFL)
V = JOB.replace("bindings = 2", 'values = "v.npy"')
case("values-nan", S, "nan", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy=_npy(np.full((2, 11), np.nan)))
case("values-inf", S, "nan or infinity", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy=_npy(np.full((2, 11), np.inf)))
case("values-object", S, "numeric", j_DOT_toml=V, c_DOT_toml=QFL,
     v_DOT_npy=_npy(np.array([{"a": 1}, None], dtype=object)))
case("values-text", S, "numeric", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy="1 2 3\n")
case("values-npz", S, ".npy", j_DOT_toml=JOB.replace("bindings = 2", 'values = "v.npz"'), c_DOT_toml=QFL,
     v_DOT_npz=b"PK\x03\x04")
case("values-pickle", S, "numeric", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy=pickle.dumps([1.0, 2.0]))
case("values-shape", S, "shape", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy=_npy(np.zeros((2, 3))))
case("values-strings", S, "dtype", j_DOT_toml=V, c_DOT_toml=QFL, v_DOT_npy=_npy(np.full((1, 11), "a")))
case("values-missing", S, "not found", j_DOT_toml=V, c_DOT_toml=QFL)
REC = {"record_id": "r1", "backend": "fake_manila", "local": True, "mode": "job", "job_ids": ["x"],
       "options": {}, "status": "DONE", "isa": {}, "values": {}, "observables": [], "specs": {},
       "result_file": "r1.result.json"}
case("jobs-list-file", ["jobs", "list", "--records-dir", "afile"], "is a file", afile="")
case("jobs-status-unknown", ["jobs", "status", "nope", "--records-dir", "rec"], "no job record")
case("jobs-fetch-unknown", ["jobs", "fetch", "nope", "--records-dir", "rec", "--results-dir", "res"], "no job record")
case("jobs-cancel-unknown", ["jobs", "cancel", "nope", "--records-dir", "rec"], "no job record")
case("jobs-fetch-corrupt", ["jobs", "fetch", "r1", "--records-dir", "rec", "--results-dir", "res"], "corrupt",
     rec__r1_DOT_json='{"record_id": "r1", ')
case("jobs-fetch-no-local", ["jobs", "fetch", "r1", "--records-dir", "rec", "--results-dir", "res"], "corrupt",
     rec__r1_DOT_json=json.dumps({k: v for k, v in REC.items() if k != "local"}))
case("jobs-fetch-truncated-result", ["jobs", "fetch", "r1", "--records-dir", "rec", "--results-dir", "res"],
     "damaged", rec__r1_DOT_json=json.dumps(REC), rec__r1_DOT_result_DOT_json='{"__type__": "Primitive')
case("jobs-fetch-results-file", ["jobs", "fetch", "r1", "--records-dir", "rec", "--results-dir", "afile"],
     "is a file", rec__r1_DOT_json=json.dumps(REC), afile="")
case("jobs-cancel-done", ["jobs", "cancel", "r1", "--records-dir", "rec"], "already finished",
     rec__r1_DOT_json=json.dumps(REC))

# --- noise snapshot, backends, quickstart, usage -----------------------------------------------------------------
case("snapshot-unknown", ["noise", "snapshot", "fake_nowhere", "--out-dir", "nm"], "unknown backend")
case("snapshot-generic-huge", ["noise", "snapshot", "generic_100000", "--out-dir", "nm"], "at most")
case("snapshot-out-file", ["noise", "snapshot", "fake_manila", "--out-dir", "afile"], "is a file", afile="")
case("backends-contains", ["backends", "--contains", "zzzz"], "no backend")
case("backends-min-qubits", ["backends", "--min-qubits", "0"], "")
case("quickstart-spec-missing", ["quickstart", "--spec", "nope.toml", "--results-dir", "r", "--isa-dir", "i"],
     "not found")
case("quickstart-no-qfl", ["quickstart", "--spec", "t.toml", "--results-dir", "r", "--isa-dir", "i"], "qfl",
     t_DOT_toml=TRAIN.replace('name = "qfl"\ndegree = 1\nobservables = 2', 'name = "lmf"'))
case("quickstart-results-file", ["quickstart", "--results-dir", "afile"], "is a file", afile="")
case("quickstart-shots-1", ["quickstart", "--shots", "1"], "")
# --- qfl reproduce --------------------------------------------------------------------------------------------------
case("reproduce-no-name", ["reproduce"], "--list")
case("reproduce-unknown", ["reproduce", "degre"], "no experiment")
case("reproduce-seeds-text", ["reproduce", "degree", "--seeds", "a,b"], "--seeds")
case("reproduce-seeds-repeated", ["reproduce", "degree", "--seeds", "1,1"], "distinct")
case("reproduce-workers-0", ["reproduce", "degree", "--workers", "0"], "")
case("reproduce-results-file", ["reproduce", "degree", "--quick", "--results-dir", "afile"], "is a file", afile="")
case("reproduce-data-path-unused", ["reproduce", "degree", "--data-path", "d"], "takes no --data-path",
     d__keep=lambda p: None)
case("reproduce-data-path-missing", ["reproduce", "modalities", "--data-path", "nope"], "does not exist")
case("reproduce-data-path-not-ptbxl", ["reproduce", "modalities", "--data-path", "d"], "ptbxl_database.csv",
     d__keep=lambda p: None)
case("reproduce-table-no-runs", ["reproduce", "--table", "--results-dir", "r"], "no reproduce/ folder")
case("reproduce-ray-unreachable", ["reproduce", "degree", "--quick", "--ray-address", "127.0.0.1:1"], "ray")
case("unknown-command", ["trian"], "no such command")
case("unknown-option", ["train", "t.toml", "--resum"], "no such option")


def _tree(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if not p.is_dir()} | {
        p.relative_to(root).as_posix() + "/": 0 for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    return work, home


def test_the_suite_is_large_enough():
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_no_files(c: Case, workdir, capsys):
    work, home = workdir
    for name, content in c.files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/keep"):  # only the folder
            continue
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    before, home_before = _tree(work), _tree(home)
    code, out, err = run_cli(c.argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}; stdout: {out[-500:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    assert c.expect in lines[0].lower(), lines[0]
    assert _tree(work) == before, "files were created or changed"
    assert _tree(home) == home_before, "files were created under $HOME"
