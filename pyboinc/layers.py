"""Package layers (numpy, scipy, ...) made importable in the worker, unpacked once per host.

A layer is a zip of site-packages built by `build-workers --with` and sent as a file of
the app version. C extensions cannot load from a zip, so the first task on a host unpacks
it into a content-addressed cache beside the resolved file (in BOINC, the project
directory: `projects/<dir>/pymw-layer-cache/`) and every later task only puts the cached
tree on sys.path:

    pymw-layer-cache/
        <sha256 of the zip>/            the unpacked tree
        <layer file name>.sha256        "size mtime_ns sha256": the zip is hashed once
        .tmp-<random>/                  an unpacking in progress

- Several slots may start at once: each unpacks into its own temporary folder, then
  renames it into place; the loser of the rename drops its copy and uses the winner's.
- BOINC deletes an app version's files but knows nothing of the cache: each activation
  first drops the stamps whose zip is gone, the trees no stamp names, and temporary
  folders left by a killed worker.
- Unpacking goes through `contract.safe_extract` (no traversal, symlinks or bombs).

The worker command line names the layers in its stdlib-zip argument, after the zip:
`1.00_python311.zip,1.00_numpy-2.2.6_cp311.zip` (`zip_argument`, `split_zip_argument`).
The app version (BOINC) or the manifest (`-c`) decides which layers a task gets, and the
master writes them there.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's, nor collections.abc: a task's start-up pays for both
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SEPARATOR = ","  # in the stdlib-zip argument; never in a logical name or a build's path
CACHE_DIR = "pymw-layer-cache"
_STAMP_SUFFIX = ".sha256"
_TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600  # an unpacking older than this was killed
# A layer is an app-version file (BOINC checks its md5 and signature), not task input:
# its caps are far above the task archives' (scipy alone is about 20,000 files).
MAX_LAYER_BYTES = 8 << 30
MAX_LAYER_MEMBERS = 500_000


class LayerError(Exception):
    """A layer that cannot be made importable; `str(error)` is the one-line reason."""


def zip_argument(stdlib_zip: str | os.PathLike, layers: Iterable = ()) -> str:
    """The worker's stdlib-zip argument: the zip, then the layers, joined by SEPARATOR."""
    names = [os.fspath(stdlib_zip), *(os.fspath(layer) for layer in layers)]
    for name in names:
        if SEPARATOR in name:
            raise ValueError(f"{name!r} contains {SEPARATOR!r}; move it to a path without one")
    return SEPARATOR.join(names)


def split_zip_argument(argument: str) -> tuple[str, list[str]]:
    """(the stdlib zip, the layers) named by the worker's stdlib-zip argument."""
    stdlib_zip, *layers = argument.split(SEPARATOR)
    return stdlib_zip, layers


def activate(
    paths: Iterable[str], after: str, check: Callable[[str], None] | None = None
) -> list[str]:
    """Put the unpacked tree of each layer zip in `paths` on sys.path, right after `after`
    (the stdlib zip); return the trees.

    `check(path)`, when given, is called for each layer before anything of it is unpacked
    or importable, and refuses it by raising (a signing worker checks the sha256).
    """
    trees = []
    for path in paths:
        source = os.path.abspath(path)
        cache = os.path.join(os.path.dirname(source), CACHE_DIR)
        try:
            os.makedirs(cache, exist_ok=True)
            remove_orphans(cache)
            if check is not None:
                check(source)
            digest = _digest(source, cache)
            trees.append(_tree(source, cache, digest))
        except OSError as error:
            raise LayerError(f"cannot unpack layer {path} into {cache}: {error}") from None
    position = sys.path.index(after) + 1 if after in sys.path else 0
    sys.path[position:position] = trees
    return trees


def sweep_beside(stdlib_zip: str) -> None:
    """Sweep the layer cache beside the stdlib zip on a start that uses no layer: once BOINC
    has removed a project's last app version with layers, no start that uses one is left
    to clean up after it (`activate` sweeps on the others). One stat when there is none."""
    cache = os.path.join(os.path.dirname(os.path.abspath(stdlib_zip)), CACHE_DIR)
    if os.path.isdir(cache):
        try:
            remove_orphans(cache)
        except OSError:  # another slot is sweeping it, or it went meanwhile: theirs to do
            pass


def _stamp_path(source: str, cache: str) -> str:
    return os.path.join(cache, os.path.basename(source) + _STAMP_SUFFIX)


def _digest(source: str, cache: str) -> str:
    """The zip's sha256, read from its stamp while size and mtime match, else computed.

    Trusting the stamp is safe: whoever could forge it can write to the project directory,
    and so could replace the worker executable itself.
    """
    info = os.stat(source)
    stamp = _stamp_path(source, cache)
    try:
        with open(stamp) as handle:
            size, mtime, digest = handle.read().split()
        if (int(size), int(mtime)) == (info.st_size, info.st_mtime_ns):
            return digest
    except (OSError, ValueError):
        pass
    import hashlib

    with open(source, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    # The stamp names the tree before the tree exists, so that no cleanup running in
    # another slot can take the new tree for an orphan.
    _write_atomically(stamp, f"{info.st_size} {info.st_mtime_ns} {digest}\n", cache)
    return digest


def _write_atomically(path: str, text: str, cache: str) -> None:
    temporary = os.path.join(cache, _TEMP_PREFIX + os.urandom(8).hex())
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _tree(source: str, cache: str, digest: str) -> str:
    """The unpacked tree of `source` in the cache, unpacking it first if it is not there."""
    tree = os.path.join(cache, digest)
    if os.path.isdir(tree):
        return tree
    from pyboinc import contract

    temporary = os.path.join(cache, _TEMP_PREFIX + os.urandom(8).hex())
    try:
        contract.safe_extract(
            source, temporary, max_bytes=MAX_LAYER_BYTES, max_members=MAX_LAYER_MEMBERS
        )
        os.rename(temporary, tree)
    except contract.ContractError as error:
        _remove(temporary)
        raise LayerError(f"layer {os.path.basename(source)} refused: {error}") from None
    except OSError:
        _remove(temporary)
        if not os.path.isdir(tree):  # not another slot that renamed its copy first
            raise
    return tree


def remove_orphans(cache: str) -> None:
    """Drop stamps whose zip is gone, trees no stamp names, and stale unpackings."""
    import time

    names = os.listdir(cache)
    live = set()
    for name in names:
        if not name.endswith(_STAMP_SUFFIX) or name.startswith(_TEMP_PREFIX):
            continue
        stamp = os.path.join(cache, name)
        source = os.path.join(os.path.dirname(cache), name.removesuffix(_STAMP_SUFFIX))
        if not os.path.isfile(source):
            _remove(stamp)
            continue
        try:
            with open(stamp) as handle:
                live.add(handle.read().split()[-1])
        except (OSError, IndexError):
            _remove(stamp)
    stale_before = time.time() - STALE_TEMP_SECONDS
    for name in names:
        path = os.path.join(cache, name)
        if name.startswith(_TEMP_PREFIX):
            try:
                if os.lstat(path).st_mtime < stale_before:
                    _remove(path)
            except OSError:
                pass
        elif _is_digest(name) and name not in live:
            # Renamed away first: no task can find a half-deleted tree under its name.
            doomed = os.path.join(cache, _TEMP_PREFIX + "dead-" + os.urandom(8).hex())
            try:
                os.rename(path, doomed)
            except OSError:
                continue  # another slot got there first
            _remove(doomed)


def _is_digest(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _remove(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
