from __future__ import annotations

import json
import subprocess
import sys

import pytest
from qiskit import qpy

from qfl_qiskit.specs import QFLSpec

from ..conftest import REPO, run_cli

SMALL_QFL = 'kind = "qfl"\nmodalities = 2\nfeatures = 2\ndegree = 2\nobservables = 4\n'


def run(argv, capsys):
    return run_cli(argv, capsys)


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_QFL)
    return path


def test_help_and_no_args(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "transpile-report" in out and "circuit" in out
    code, out, _ = run([], capsys)
    assert code == 0 and "Usage" in out


def test_circuit_build_writes_qpy_qasm_and_png(tmp_path, spec_file, capsys):
    out_dir = tmp_path / "build"
    code, out, err = run(["circuit", "build", str(spec_file), "--out-dir", str(out_dir),
                          "--draw", str(tmp_path / "c.png")], capsys)
    assert code == 0, err
    sid = QFLSpec(modalities=2, features=2, degree=2, observables=4).spec_id
    assert files_under(out_dir) == [f"{sid}.json", f"{sid}.qasm", f"{sid}.qpy"]  # the sidecar with them
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "qubits" in out and "weights" in out and "24" in out  # 2*1*3*4 weights
    with open(out_dir / f"{sid}.qpy", "rb") as f:
        (qc,) = qpy.load(f)
    assert qc.num_qubits == 4


def test_mma_build_with_presence(tmp_path, capsys):
    code, out, err = run(["circuit", "build", str(REPO / "circuits/mma_default.toml"), "--out-dir", str(tmp_path),
                          "--present", "1,0,1"], capsys)
    assert code == 0, err
    assert "101" in out
    assert all("_present-101" in name for name in files_under(tmp_path))


def test_transpile_report_writes_record_plot_and_isa(tmp_path, spec_file, capsys):
    json_path = tmp_path / "out" / "report.json"
    isa_dir = tmp_path / "isa"
    code, out, err = run(["transpile-report", str(spec_file), "-b", "fake_torino", "-b", "fake_manila",
                          "--seeds", "2", "--record", str(json_path), "--isa-dir", str(isa_dir)], capsys)
    assert code == 0, err
    assert "fake_torino" in out and "fake_manila" in out and "gain" in out
    record = json.loads(json_path.read_text())
    assert record["record_type"] == "transpile_report"
    assert record["specs"]["circuit"]["spec_id"] == QFLSpec(modalities=2, features=2, observables=4).spec_id
    assert record["specs"]["transpile"]["seeds"] == 2
    assert {"qiskit", "qiskit-ibm-runtime"} <= set(record["provenance"]["packages"])
    reports = record["payload"]["reports"]
    assert [r["backend"] for r in reports] == sorted([r["backend"] for r in reports],
                                                     key=lambda b: -next(r["esp"] for r in reports if r["backend"] == b))
    for r in reports:
        assert r["esp"] >= r["baseline_esp"] and r["calibration_time"]
    assert json_path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert len(files_under(isa_dir)) == 6  # qpy + qasm + json sidecar per backend
    for paths in record["payload"]["isa_circuits"].values():
        with open(paths["qpy"], "rb") as f:
            assert qpy.load(f)[0].layout is not None


BAD_SPECS = {
    "degree0.toml": ('kind = "qfl"\ndegree = 0\n', "degree: Input should be greater than or equal to 1"),
    "typo.toml": ('kind = "qfl"\nmodalites = 3\n', "unknown key 'modalites'"),
    "syntax.toml": ('kind = "qfl"\nmodalities = [\n', "not valid TOML"),
    "features0.toml": ('kind = "qfl"\nfeatures = 0\n', "features"),
    "obs0.toml": ('kind = "qfl"\nobservables = 0\n', "observables"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
@pytest.mark.parametrize("command", ["transpile-report", "circuit build"])
def test_bad_spec_one_line_exit_2_no_files(tmp_path, capsys, monkeypatch, name, command):
    text, message = BAD_SPECS[name]
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    before = files_under(tmp_path)
    code, out, err = run([*command.split(), name], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "Traceback" not in err + out
    assert files_under(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["transpile-report", "missing.toml"], "spec file not found: missing.toml"),
        (["transpile-report", "{spec}", "-b", "fake_torin"], "did you mean fake_torino"),
        (["transpile-report", "{spec}", "-b", "generic_2"], "circuit needs 4 qubits but generic_2 has 2"),
        (["transpile-report", "{spec}", "-b", "fake_fez", "-b", "fake_fez"], "named twice"),
        (["transpile-report", "{spec}", "--seeds", "0"], "seeds: Input should be greater than or equal to 1"),
        (["transpile-report", "{spec}", "-O", "5"], "optimization_level"),
        (["transpile-report", "{spec}", "--record", "out.txt"], "expected a .json file name"),
        (["transpile-report", "{spec}", "--present", "1,0"], "--present applies to MMA specs only"),
        (["circuit", "build", "{mma}", "--present", "1,0"], "needs 3 comma-separated 0/1 flags"),
        (["circuit", "build", "{mma}", "--present", "1,x,0"], "needs 3 comma-separated 0/1 flags"),
        (["circuit", "build", "{spec}", "--draw", "c.svg"], "expected a .png file name"),
        (["transpile-report", "{spec}", "--seeds", "many"], "Invalid value for '--seeds'"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_arguments_one_line_exit_2_no_files(tmp_path, spec_file, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(spec=spec_file, mma=REPO / "circuits/mma_default.toml") for a in args]
    before = files_under(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err + out
    assert files_under(tmp_path) == before


def test_console_script_bad_input_is_quick_and_clean(tmp_path):
    """The installed entry point: one line, exit 2, and heavy packages are not imported for bad input."""
    code = (
        "import sys; from qfl_qiskit.cli import main\n"
        "try:\n    main(['transpile-report', 'missing.toml'])\n"
        "except SystemExit as e:\n    print(e.code, 'qiskit' in sys.modules, 'torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert res.stdout.split() == ["2", "False", "False"]
    assert res.stderr.strip() == "error: spec file not found: missing.toml; give the path of an existing .toml file"


def test_backends_table(capsys):
    code, out, err = run(["backends", "--contains", "manila"], capsys)
    assert code == 0, err
    assert "fake_manila" in out and "5" in out and "cx" in out
    code, _, err = run(["backends", "--contains", "zzz"], capsys)
    assert code == 2 and "no backend name contains 'zzz'" in err


def test_version_names_the_package_and_what_it_runs_on(capsys):
    from qfl_qiskit import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.splitlines()[0] == f"qfl-qiskit {__version__}"
    assert any(line.split()[0] == "qiskit" for line in out.splitlines()[1:])


def test_shell_completion_is_available(capsys):
    code, out, _ = run_cli(["--show-completion", "bash"], capsys)
    assert code == 0 and "_QFL_COMPLETE" in out


def test_piped_tables_never_cut_backend_names(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run_cli(["backends", "--contains", "boeblingen"], capsys)
    assert code == 0 and "fake_boeblingen " in out and "…" not in out


def test_backends_flags_broken_calibration(capsys):
    code, out, _ = run_cli(["backends", "--contains", "kyoto", "--json"], capsys)
    assert code == 0
    [row] = json.loads(out)["backends"]
    assert row["name"] == "fake_kyoto" and row["broken"]["couplers"] > 0 and row["median_2q_error"] >= 0.5
    code, out, err = run_cli(["backends", "--contains", "kyoto"], capsys)
    assert "warning: fake_kyoto: calibration marks" in out


@pytest.mark.parametrize("argv", [
    ["circuit", "build", "circuits/qfl_default.toml", "--out-dir", "{tmp}/b"],
    ["transpile-report", "circuits/mma_default.toml", "-b", "fake_guadalupe", "--seeds", "1", "--results-dir",
     "{tmp}/r", "--isa-dir", "{tmp}/isa"],
    ["jobs", "list", "--records-dir", "{tmp}/none"],
    ["backends", "--contains", "manila"],
], ids=["circuit-build", "transpile-report", "jobs-list", "backends"])
def test_json_puts_the_data_alone_on_stdout_and_the_tables_on_stderr(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, err = run_cli([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--json"], capsys)
    assert code == 0, err
    data = json.loads(out)  # stdout holds nothing else
    assert isinstance(data, dict) and data
    if argv[0] == "transpile-report":
        written = json.loads(next((tmp_path / "r").glob("transpile_*.json")).read_text())
        assert data == written and "ranked by ESP" in err
    if argv[0] == "circuit":
        assert data["qubits"] == 5 and len(data["inputs"]) == 12 and len(data["weights"]) == 30


def test_train_json_is_the_comparison_record(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.toml").write_text('name = "t"\n[data]\nname = "synthetic_parity"\n'
                                     'options = {num_modalities = 2, features = 1, n = 80}\n[optim]\nepochs = 1\n'
                                     '[[models]]\nname = "concat"\nfeatures = 1\n')
    code, out, err = run_cli(["train", "t.toml", "--results-dir", "res", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads((tmp_path / "res" / "t" / "comparison.json").read_text())
