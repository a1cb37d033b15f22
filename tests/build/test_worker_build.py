"""Slow: build the portable worker once, then run tasks through it, also in chroots.

The chroot tests need root (chroot, mount /proc); the glibc 2.31 one also needs
debootstrap and a Debian mirror the first time (the root is cached in ~/.cache/pymw).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
BULLSEYE_ROOT = Path(os.environ.get("PYMW_BULLSEYE_ROOT", Path.home() / ".cache/pymw/bullseye"))
EXE = "pymw_1.03_x86_64-pc-linux-gnu"
ZIP = "1.00_python311.zip"

TASK = """\
import decimal, hashlib, json, sqlite3, sys, zlib
import boinc

source, target = sys.argv[1], sys.argv[2]
with open(source) as handle:
    text = handle.read()
db = sqlite3.connect(":memory:")
db.execute("create table words (word text)")
db.executemany("insert into words values (?)", [(w,) for w in text.split()])
rows = [r[0] for r in db.execute("select upper(word) from words order by word")]
result = {
    "rows": rows,
    "third": str(decimal.Decimal(1) / decimal.Decimal(3)),
    "sha256": hashlib.sha256(text.encode()).hexdigest(),
    "crc32": zlib.crc32(text.encode()),
    "standalone": boinc.is_standalone(),
    "app_name": boinc.get_app_name(),
}
with open(target, "w") as handle:
    json.dump(result, handle, sort_keys=True)
"""
INPUT = "portable workers need nothing on the host\n"


@pytest.fixture(scope="session")
def worker_dir(pyboinc_dist):
    """The session's portable + onedir build (tests/conftest.py), shared with BOINC tests."""
    return pyboinc_dist / "linux"


def make_slot(slot: Path, worker_dir: Path, script: str = TASK) -> Path:
    slot.mkdir(parents=True, exist_ok=True)
    shutil.copy2(worker_dir / EXE, slot / EXE)
    shutil.copy2(worker_dir / ZIP, slot / ZIP)
    (slot / "task.py").write_text(script)
    (slot / "in").write_text(INPUT)
    return slot


def diagnostics(slot: Path, result: subprocess.CompletedProcess) -> str:
    stderr_txt = slot / "stderr.txt"
    return (stderr_txt.read_text() if stderr_txt.exists() else "") + (result.stderr or "")


def expected_output(tmp_path) -> dict:
    """The same task through the same runtime in the system's Python (not frozen)."""
    slot = tmp_path / "reference"
    slot.mkdir()
    (slot / "task.py").write_text(TASK)
    (slot / "in").write_text(INPUT)
    (slot / "empty.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pyboinc", "task.py", "empty.zip", "in", "out"],
        cwd=slot,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    return json.loads((slot / "out").read_text())


def test_manifest_describes_the_files(worker_dir):
    document = json.loads((worker_dir / "manifest.json").read_text())
    assert document["format"] == "pymw-worker-manifest/1"
    assert (document["platform"], document["portable"]) == ("x86_64-pc-linux-gnu", True)
    roles = {entry["role"]: entry for entry in document["files"]}
    assert roles["executable"]["file"] == EXE and roles["stdlib"]["file"] == ZIP
    for entry in document["files"]:
        assert (worker_dir / entry["file"]).stat().st_size == entry["size"]


def test_task_output_matches_the_system_python(worker_dir, tmp_path):
    slot = make_slot(tmp_path / "slot", worker_dir)
    result = subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert json.loads((slot / "out").read_text()) == expected_output(tmp_path)
    assert (slot / "boinc_finish_called").read_text().strip() == "0"


def test_finish_3_gives_exit_status_3(worker_dir, tmp_path):
    slot = make_slot(tmp_path / "slot", worker_dir, "import boinc\nboinc.finish(3)\n")
    result = subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 3
    assert (slot / "boinc_finish_called").read_text().strip() == "3"


def test_failing_script_exits_non_zero_with_the_traceback(worker_dir, tmp_path):
    slot = make_slot(tmp_path / "slot", worker_dir, "import json\njson.loads('{')\n")
    result = subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 1
    assert "json.decoder.JSONDecodeError" in (slot / "stderr.txt").read_text()


def test_soft_links_point_elsewhere(worker_dir, tmp_path):
    """A BOINC slot: the command-line names are <soft_link> files into the project dir."""
    project = tmp_path / "projects" / "example"
    project.mkdir(parents=True)
    slot = make_slot(tmp_path / "slots" / "0", worker_dir)
    for logical, physical in (("task.py", "task_1.py"), (ZIP, ZIP), ("in", "wu_1_in")):
        shutil.move(slot / logical, project / physical)
        (slot / logical).write_text(f"<soft_link>../../projects/example/{physical}</soft_link>")
    (slot / "out").write_text("<soft_link>../../projects/example/wu_1_0_out</soft_link>")
    result = subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert json.loads((project / "wu_1_0_out").read_text()) == expected_output(tmp_path)


def test_onedir_variant_runs(worker_dir, tmp_path):
    slot = make_slot(tmp_path / "slot", worker_dir)
    launcher = worker_dir / f"{EXE}.onedir" / EXE
    result = subprocess.run([str(launcher), "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert json.loads((slot / "out").read_text()) == expected_output(tmp_path)


# ------------------------------------------------------------------ a signing worker


@pytest.fixture(scope="session")
def signing_worker(pyboinc_signing_dist):
    """A worker built with --signing-public-key (tests/conftest.py), and the private key
    that signs for it."""
    from pymw.signing import load_signing_key

    out, private_path = pyboinc_signing_dist
    return out / "linux", load_signing_key(private_path)


def run_signing_worker(signing_worker, slot: Path, script: str) -> subprocess.CompletedProcess:
    worker_dir, _ = signing_worker
    make_slot(slot, worker_dir, script)
    return subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot, timeout=120)


def test_signing_worker_refuses_an_unsigned_script(signing_worker, tmp_path):
    slot = tmp_path / "slot"
    result = run_signing_worker(signing_worker, slot, TASK)
    assert result.returncode == 4
    stderr_txt = (slot / "stderr.txt").read_text()
    assert "pymw worker: refusing task.py: it is not signed" in stderr_txt
    assert (slot / "boinc_finish_called").read_text().strip() == "4"
    assert not (slot / "out").exists()


def test_signing_worker_refuses_a_tampered_script(signing_worker, tmp_path):
    from pymw.signing import sign_script

    tampered = sign_script(TASK, signing_worker[1]).replace("upper(word)", "lower(word)")
    slot = tmp_path / "slot"
    assert run_signing_worker(signing_worker, slot, tampered).returncode == 4
    assert "its signature does not match" in (slot / "stderr.txt").read_text()


def test_signing_worker_runs_a_signed_script(signing_worker, tmp_path):
    from pymw.signing import sign_script

    slot = tmp_path / "slot"
    result = run_signing_worker(signing_worker, slot, sign_script(TASK, signing_worker[1]))
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert json.loads((slot / "out").read_text()) == expected_output(tmp_path)
    document = json.loads((signing_worker[0] / "manifest.json").read_text())
    assert document["signing_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert not (REPO_ROOT / "pyboinc" / "_trusted_key.py").exists()  # never in the source


def test_signing_worker_refuses_a_stdlib_zip_it_was_not_built_with(signing_worker, tmp_path):
    """Bypass (A): `pymw_task.py evil.zip in out` put an unverified zip first on sys.path."""
    from pymw.signing import sign_script

    slot = make_slot(tmp_path / "slot", signing_worker[0], sign_script(TASK, signing_worker[1]))
    with zipfile.ZipFile(slot / "evil.zip", "w") as evil:
        evil.writestr("traceback.py", "import sys\nsys.stderr.write('EVIL RAN')\n")
    result = subprocess.run([f"./{EXE}", "task.py", "evil.zip", "in", "out"], cwd=slot)
    assert result.returncode == 4
    stderr_txt = (slot / "stderr.txt").read_text()
    assert "refusing evil.zip: its content is not the 1.00_python311.zip this worker" in stderr_txt
    assert "EVIL RAN" not in stderr_txt and not (slot / "out").exists()


def test_signing_worker_imports_nothing_sent_with_a_task(signing_worker, tmp_path):
    """Bypass (B): a data zip named by the (unsigned) input made safe_extract import
    zipfile_deflate64, and a zipfile_deflate64.py sent with the task ran. Every module the
    worker may import lazily is planted beside the task's files here."""
    import tasks_for_tests
    from pyboinc_helpers import modules_a_worker_may_import, plant_trap_modules

    from pyboinc import contract
    from pymw.programs import program_from_function
    from pymw.signing import sign_script

    script = sign_script(
        program_from_function(tasks_for_tests.read_data_file).script, signing_worker[1]
    )
    slot = make_slot(tmp_path / "slot", signing_worker[0], script)
    plant_trap_modules(slot, modules_a_worker_may_import())
    with zipfile.ZipFile(slot / "data.zip", "w") as data:
        data.writestr("numbers.txt", "1 2 3")
    (slot / "in").write_bytes(contract.encode_input(("numbers.txt",), data_zip="data.zip"))
    result = subprocess.run([f"./{EXE}", "task.py", ZIP, "in", "out"], cwd=slot)
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert "TRAP" not in (slot / "stderr.txt").read_text()
    assert contract.decode_output((slot / "out").read_bytes()).value == "1 2 3"


# ----------------------------------------------------------------------------- chroots


def run_in_chroot(root: Path, slot_in_root: str) -> subprocess.CompletedProcess:
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)

    def enter_root():  # in the child: like chroot(1), but into the slot, not "/"
        os.chroot(root)
        os.chdir(slot_in_root)

    try:
        # staticx needs a writable temp dir before Python starts: the slot is one.
        return subprocess.run(
            [f"{slot_in_root.rstrip('/')}/{EXE}", "task.py", ZIP, "in", "out"],
            preexec_fn=enter_root,
            env={"TMPDIR": slot_in_root, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        subprocess.run(["umount", str(proc)], check=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount need root")


@needs_root
def test_runs_in_an_empty_root(worker_dir, tmp_path):
    """Only the exe, the zip, the script, the input and /proc: nothing of the host."""
    root = make_slot(tmp_path / "root", worker_dir)
    result = run_in_chroot(root, "/")
    assert result.returncode == 0, diagnostics(root, result)
    assert json.loads((root / "out").read_text()) == expected_output(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [
            EXE,
            ZIP,
            "task.py",
            "in",
            "out",
            "proc",
            "stderr.txt",
            "boinc_finish_called",
            "boinc_lockfile",
        ]
    )


def debian_mirror() -> str:
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        text = path.read_text() if path.is_file() else ""
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, re.M
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="session")
def bullseye_root():
    marker = BULLSEYE_ROOT / ".pymw-complete"
    if not marker.exists():
        if shutil.which("debootstrap") is None:
            pytest.skip("debootstrap is not installed")
        partial = BULLSEYE_ROOT.with_name(BULLSEYE_ROOT.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "bullseye", str(partial), debian_mirror()],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"debootstrap failed: {result.stderr[-300:]}")
        shutil.rmtree(BULLSEYE_ROOT, ignore_errors=True)
        partial.rename(BULLSEYE_ROOT)
        marker.write_text("ok\n")
    return BULLSEYE_ROOT


@needs_root
def test_runs_on_glibc_2_31_without_python(worker_dir, bullseye_root, tmp_path):
    assert not list((bullseye_root / "usr/bin").glob("python3*"))
    assert (bullseye_root / "lib/x86_64-linux-gnu/libc-2.31.so").exists()
    slot_name = f"pymw-slot-{os.getpid()}"
    slot = make_slot(bullseye_root / slot_name, worker_dir)
    try:
        result = run_in_chroot(bullseye_root, f"/{slot_name}")
        assert result.returncode == 0, diagnostics(slot, result)
        assert json.loads((slot / "out").read_text()) == expected_output(tmp_path)
    finally:
        shutil.rmtree(slot)
