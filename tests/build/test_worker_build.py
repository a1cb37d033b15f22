"""Slow: build the portable worker once, then run tasks through it, also in chroots.

The chroot tests need root (chroot, mount /proc); the glibc 2.31 one also needs
debootstrap and a Debian mirror the first time (the root is cached in ~/.cache/pymw).
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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


# ------------------------------------------------------------- the runtime cache (host)


def cache_entries(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "pyboinc-cache").iterdir())


def run_in_slot(project: Path, slot: Path, **options) -> subprocess.CompletedProcess:
    """Like BOINC: the main program lives in the project dir and runs in the slot."""
    slot.mkdir(parents=True, exist_ok=True)
    (slot / "task.py").write_text(options.pop("script", "pass\n"))
    (slot / "in").write_text(INPUT)
    command = [str(project / EXE), "task.py", str(project / ZIP), "in", "out"]
    return subprocess.run(command, cwd=slot, timeout=120, **options)


@pytest.fixture
def project(worker_dir, tmp_path) -> Path:
    project = tmp_path / "projects" / "example"
    project.mkdir(parents=True)
    shutil.copy2(worker_dir / EXE, project / EXE)
    shutil.copy2(worker_dir / ZIP, project / ZIP)
    return project


def test_the_runtime_is_unpacked_once_into_the_project_dir(project, tmp_path):
    assert run_in_slot(project, tmp_path / "slot1").returncode == 0
    [key] = cache_entries(project)
    program = project / "pyboinc-cache" / key / "pymw-worker"
    first = program.stat()
    assert run_in_slot(project, tmp_path / "slot2").returncode == 0
    assert cache_entries(project) == [key]  # nothing unpacked again, no temp folder left
    assert (program.stat().st_ino, program.stat().st_mtime) == (first.st_ino, first.st_mtime)


def test_slots_starting_at_once_share_one_entry(project, tmp_path):
    command = [str(project / EXE), "task.py", str(project / ZIP), "in", "out"]
    slots = [tmp_path / f"slot{i}" for i in range(4)]
    for slot in slots:
        slot.mkdir()
        (slot / "task.py").write_text("open('out', 'w').write('done')\n")
        (slot / "in").write_text(INPUT)
    started = [subprocess.Popen(command, cwd=slot) for slot in slots]
    assert [process.wait(timeout=120) for process in started] == [0] * 4
    assert all((slot / "out").read_text() == "done" for slot in slots)
    assert len(cache_entries(project)) == 1


def test_entries_of_removed_app_versions_are_swept(project, tmp_path):
    cache = project / "pyboinc-cache"
    gone, kept, killed = cache / ("0" * 32), cache / ("1" * 32), cache / ".tmp-999999999"
    for entry, owner in ((gone, "pymw_1.02_x86_64-pc-linux-gnu"), (kept, ZIP), (killed, EXE)):
        entry.mkdir(parents=True)
        (entry / ".owner").write_text(owner)
    assert run_in_slot(project, tmp_path / "slot").returncode == 0
    assert not gone.exists() and not killed.exists()  # no such program, no such process
    assert kept.exists()  # its owner is still there


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot, mount and setuid need root")
NOBODY = 65534


def test_openssl_and_cjk_codecs_only_on_request(project, tmp_path):
    """The base worker leaves out OpenSSL (--with-openssl) and the CJK codecs; hashlib
    still gives its builtin algorithms."""
    script = (
        "import hashlib, importlib.util, json\n"
        "present = [m for m in ('_ssl', '_hashlib', '_codecs_cn') if importlib.util.find_spec(m)]\n"
        "try:\n    'x'.encode('gbk')\nexcept LookupError:\n    gbk = False\nelse:\n    gbk = True\n"
        "json.dump([present, gbk, hashlib.sha256(b'').hexdigest()[:8]], open('out', 'w'))\n"
    )
    slot = tmp_path / "slot"
    assert run_in_slot(project, slot, script=script).returncode == 0, diagnostics(
        slot, subprocess.CompletedProcess([], 1, "", "")
    )
    assert json.loads((slot / "out").read_text()) == [[], False, "e3b0c442"]


@needs_root
def test_an_unwritable_project_dir_falls_back_to_the_slot(worker_dir):
    base = Path(tempfile.mkdtemp(prefix="pymw-unwritable-"))  # pytest's tmp dirs are 0700
    try:
        base.chmod(0o755)
        project = base / "project"
        project.mkdir()
        shutil.copy2(worker_dir / EXE, project / EXE)
        shutil.copy2(worker_dir / ZIP, project / ZIP)
        slot = base / "slot"
        slot.mkdir()
        os.chown(slot, NOBODY, NOBODY)
        result = run_in_slot(
            project, slot, preexec_fn=lambda: os.setuid(NOBODY), capture_output=True
        )
        assert result.returncode == 0, diagnostics(slot, result)
        assert not (project / "pyboinc-cache").exists()
        assert len(list((slot / "pyboinc-cache").iterdir())) == 1
    finally:
        shutil.rmtree(base)


# ----------------------------------------------------------------------------- chroots

BEHAVES_LIKE_PYTHON = """\
import concurrent.futures, json, multiprocessing, subprocess, sys


def square(x):
    return x * x


def main():
    code = "import json, sys; print(json.dumps([sys.argv, sys.executable]))"
    # A worker that took the child for a new task would wait 35 s on boinc_lockfile.
    child = subprocess.run([sys.executable, "-c", code, "arg"], capture_output=True,
                           text=True, timeout=20)
    result = {"child": json.loads(child.stdout), "executable": sys.executable}
    for method in ("spawn", "forkserver"):
        context = multiprocessing.get_context(method)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            result[method] = list(pool.map(square, range(5)))
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
"""

KILLED_WHILE_BUSY = """\
import concurrent.futures, multiprocessing, subprocess, sys, time


def nap(_):
    time.sleep(600)


if __name__ == "__main__":
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    context = multiprocessing.get_context("forkserver")
    pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=context)
    futures = [pool.submit(nap, i) for i in range(2)]
    spawned = multiprocessing.get_context("spawn").Process(target=nap, args=(0,))
    spawned.start()
    time.sleep(2)  # the pool's processes are up
    open("started", "w").write("ok")
    time.sleep(600)
"""

# What a hardened host has: /proc, a noexec /tmp and /dev/shm (semaphores live there).
CHROOT_MOUNTS = (
    ("proc", "proc", "rw"),
    ("tmpfs", "tmp", "noexec,nosuid,nodev"),
    ("tmpfs", "dev/shm", "noexec,nosuid,nodev"),
)


@contextlib.contextmanager
def mounted(root: Path):
    done = []
    try:
        for kind, where, options in CHROOT_MOUNTS:
            (root / where).mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["mount", "-t", kind, "-o", options, kind, str(root / where)], check=True
            )
            done.append(root / where)
        yield
    finally:
        for where in reversed(done):
            subprocess.run(["umount", str(where)], check=True)


def start_in_chroot(root: Path, slot_in_root: str, **options) -> subprocess.Popen:
    def enter_root():  # in the child: like chroot(1), but into the slot, not "/"
        os.chroot(root)
        os.chdir(slot_in_root)

    # No TMPDIR: the worker needs no temp dir, and /tmp is noexec.
    return subprocess.Popen(
        [f"{slot_in_root.rstrip('/')}/{EXE}", "task.py", ZIP, "in", "out"],
        preexec_fn=enter_root,
        env={"PATH": "/usr/bin:/bin"},
        **options,
    )


def run_in_chroot(root: Path, slot_in_root: str) -> subprocess.CompletedProcess:
    with mounted(root):
        process = start_in_chroot(
            root, slot_in_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stdout, stderr = process.communicate(timeout=120)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def processes_in(root: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "root") == str(root):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            pass
    return found


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


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


@pytest.fixture(params=["empty root", "glibc 2.31"])
def chroot_slot(request, worker_dir, tmp_path):
    """(root, slot dir in it, the slot as seen from inside): a root holding only the slot
    (exe, zip, script, input) and the mounts, or a Debian 11 minbase chroot (glibc 2.31,
    no Python)."""
    if os.geteuid() != 0:
        pytest.skip("chroot and mount need root")
    if request.param == "empty root":
        root = tmp_path / "root"
        yield root, make_slot(root / "slot", worker_dir), "/slot"
        return
    root = request.getfixturevalue("bullseye_root")
    assert not list((root / "usr/bin").glob("python3*"))
    assert (root / "lib/x86_64-linux-gnu/libc-2.31.so").exists()
    name = f"pymw-slot-{os.getpid()}"
    try:
        yield root, make_slot(root / name, worker_dir), f"/{name}"
    finally:
        shutil.rmtree(root / name)


def test_runs_in_the_chroot(chroot_slot, tmp_path):
    root, slot, inside = chroot_slot
    result = run_in_chroot(root, inside)
    assert result.returncode == 0, diagnostics(slot, result)
    assert json.loads((slot / "out").read_text()) == expected_output(tmp_path)
    expected = {
        EXE,
        ZIP,
        "task.py",
        "in",
        "out",
        "stderr.txt",
        "boinc_finish_called",
        "boinc_lockfile",
        "pyboinc-cache",
        "tmp",
    }
    assert {p.name for p in slot.iterdir()} == expected


def test_behaves_like_python_in_the_chroot(chroot_slot):
    root, slot, inside = chroot_slot
    (slot / "task.py").write_text(BEHAVES_LIKE_PYTHON)
    result = run_in_chroot(root, inside)
    assert result.returncode == 0, diagnostics(slot, result)
    output = json.loads((slot / "out").read_text())
    executable = output["executable"]
    assert executable.startswith(f"{inside.rstrip('/')}/pyboinc-cache/")
    assert output["child"] == [["-c", "arg"], executable]
    assert output["spawn"] == output["forkserver"] == [0, 1, 4, 9, 16]


def test_sigkill_leaves_no_process_and_no_file_in_the_chroot(chroot_slot):
    """What BOINC does on abort: SIGKILL of the process it started, then it empties the
    slot. Nothing of the task may run on, and nothing may stay outside the slot."""
    root, slot, inside = chroot_slot
    (slot / "task.py").write_text(KILLED_WHILE_BUSY)
    with mounted(root):
        task = start_in_chroot(root, inside, stderr=subprocess.DEVNULL)
        try:
            assert wait_until(lambda: (slot / "started").exists(), 60), diagnostics(
                slot, subprocess.CompletedProcess(task.args, task.poll())
            )
            assert len(processes_in(root)) >= 5  # task, sleeper, forkserver, pool, spawned
            task.kill()
            task.wait()
            assert wait_until(lambda: not processes_in(root), 15), processes_in(root)
            assert list((root / "tmp").iterdir()) == []
            assert list((root / "dev/shm").iterdir()) == []
        finally:
            for pid in processes_in(root):
                os.kill(pid, signal.SIGKILL)
