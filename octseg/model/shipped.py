"""The models that ship with octseg: where their weights are, their SHA-256, and the check.

``octseg infer IN --out OUT`` and ``python infer.py input=IN output=OUT`` (no ``checkpoint=``)
use :func:`default_checkpoint`: the file :data:`WEIGHTS` inside the installed package, after
checking that it is there and that its SHA-256 is :data:`SHA256` (a damaged or replaced file is
refused, never loaded). It is then loaded like any other checkpoint
(:func:`octseg.model.checkpoint.load_checkpoint`, ``weights_only=True``). The recipe that trained
it is ``octseg/configs/experiment/default.yaml``; what it was validated on: docs/model_card.md.

A shipped model is also chosen by name (the default's :data:`NAME`, the others' in
:data:`NAMED`, e.g. ``octseg-calcium-v1``): in the inference job's ``checkpoint=`` (``octseg
infer --checkpoint NAME``, alone or in an ensemble list) and in training's ``init_from=NAME``
the name is replaced by :func:`resolve` with that model's file, checked the same way. An
existing file of that name in the working folder wins (a path is what it always meant).

A shipped *ensemble* (:data:`ENSEMBLES`, e.g. ``octseg-calcium-v2``) is a name for a list of
shipped models whose class probabilities inference averages (:mod:`octseg.model.ensemble`):
``checkpoint=octseg-calcium-v2`` is ``checkpoint=[its members]`` (:func:`expand`), each member
checked as above. Where one model is needed (``init_from=``, ``distill.checkpoint=``) an
ensemble's name is refused with its members' names.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from octseg.core.errors import InputError

NAME = "octseg-default-v1"
# inside the package (octseg/model/weights/), shipped in the wheel (pyproject package-data)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS = WEIGHTS_DIR / f"{NAME}.ckpt"
# SHA-256 (hex) of WEIGHTS; empty until the weights are committed
SHA256 = "639e0bd2b8ea80cf87b818d28048945333ff52ce3ca115b0459095ef8c3167dc"
# the other shipped models, used only when named: name -> SHA-256 of WEIGHTS_DIR/<name>.ckpt
# (docs/model_card.md, "Other shipped models")
NAMED: dict[str, str] = {
    # calcium and struts on realistic frames (experiment=hybrid with stents over lesions)
    "octseg-calcium-v1": "fe4d57b49501a0a6b852c9c7220d6a78263dc2ba504815f755c78532f58eca42",
    # octseg-calcium-v1 fine-tuned on deep and faint lesions with vasa vasorum (seeds 42 and 7):
    # the members of octseg-calcium-v2 (ENSEMBLES); alone they over-call calcium
    "octseg-calcium-fdv-s42": "0247a7e4ff4589f59c1e042c5a0c23ec3b7682cf7bc01dc509105ef8bc260559",
    "octseg-calcium-fdv-s7": "73f48a1ffced4a4279295c2874505c89250c9f157de6fb80bf168cc279f0c808",
    # the members of octseg-calcium-v3: v1 and the two fine-tunes trained again at 384 A-lines
    # (init_new_grid, benchmarks/results/ensemble384_s59.md)
    "octseg-calcium-v1-384": "45ee8104793c7a0155cba6f65851b3190d283bf3482860df1a43ac75791867d6",
    "octseg-calcium-fdv384-s42": "bf7d6bb0e04a1b638edce0c6fd3b8f2d9c69d3f79b750333cacd1a33c30a5a3a",
    "octseg-calcium-fdv384-s7": "2fd32fcebc718d4b20cb77c964e99bac80825c1385ec2c8eb5d6e524fb2f313a",
}
# the shipped ensembles, used only when named: name -> its members (names in NAMED or NAME),
# averaged by inference (docs/model_card.md, "octseg-calcium-v2")
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "octseg-calcium-v2": ("octseg-calcium-v1", "octseg-calcium-fdv-s42", "octseg-calcium-fdv-s7"),
    "octseg-calcium-v3": (
        "octseg-calcium-v1-384",
        "octseg-calcium-fdv384-s42",
        "octseg-calcium-fdv384-s7",
    ),
}
CHUNK = 1 << 20  # bytes hashed at a time

# (resolved path, size, mtime_ns, inode, ctime_ns) -> SHA-256: a file is hashed once per process, not per job
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}
_LOCK = threading.Lock()


def _how_to_get(name: str) -> str:
    return (
        "reinstall octseg from a checkout or wheel that includes octseg/model/weights/"
        f"{name}.ckpt (docs/model_card.md), or give a checkpoint of your own "
        "(checkpoint=CKPT, octseg infer --checkpoint CKPT; python train.py trains one)"
    )


def names() -> tuple[str, ...]:
    """The shipped models' names (one file each), the default first."""
    return (NAME, *NAMED)


def expand(value: str) -> list[str]:
    """``value`` (a ``checkpoint=`` entry) as a list: a shipped ensemble's name becomes its
    members' names (unless a file of that name exists in the working folder: a path is what it
    always meant), anything else is itself."""
    if value in ENSEMBLES and not Path(value).exists():
        return list(ENSEMBLES[value])
    return [value]


def expand_all(entries: list[str]) -> list[str]:
    """Every entry of a ``checkpoint=`` list :func:`expand`-ed, in order; InputError when a
    shipped ensemble's member is then listed twice (named beside its ensemble, or the ensemble
    twice), naming the ensemble."""
    out: list[str] = []
    source: dict[str, str] = {}  # member -> the entry it first came from
    for entry in entries:
        for member in expand(entry):
            if member not in source:
                source[member] = entry
            elif ensemble := next(
                (e for e in (source[member], entry) if e in ENSEMBLES and e != member), None
            ):
                raise InputError(
                    None,
                    f"checkpoint lists {member} twice: it is a member of the shipped ensemble "
                    f"{ensemble} ({', '.join(ENSEMBLES[ensemble])}); list the ensemble or its "
                    "members, not both",
                )
            out.append(member)
    return out


def files_of(entries: list[str]) -> list[str]:
    """``checkpoint=`` entries as files: shipped names (:func:`expand_all`, then
    :func:`resolve`) as their checked files, paths as given (left to the loader)."""
    return [resolve(m) for m in expand_all(entries)]


def checkpoint_files(entries: list[str | Path]) -> list[Path]:
    """``entries`` (files or shipped names, e.g. a benchmark's arguments) as absolute files: a
    shipped model's name as its checked file, a shipped ensemble's as its members', a path as
    itself."""
    return [Path(f).resolve() for f in files_of([str(e) for e in entries])]


def ensemble_named(files: list[str | Path]) -> str | None:
    """The shipped ensemble whose members' files are ``files`` (in order), else None."""
    models = tuple(shipped_name(f) for f in files)
    return next((name for name, members in ENSEMBLES.items() if members == models), None)


def _shipped_list() -> str:
    return ", ".join([*names(), *(f"{n} (ensemble)" for n in ENSEMBLES)])


def _file_and_hash(name: str) -> tuple[Path, str]:
    """The shipped model's file and its recorded SHA-256 (lower-case hex, "" if none)."""
    digest = SHA256 if name == NAME else NAMED[name]
    path = WEIGHTS if name == NAME else WEIGHTS_DIR / f"{name}.ckpt"
    return path, digest.strip().lower()


def sha256_of(path: str | Path) -> str:
    """SHA-256 (hex) of a file, read :data:`CHUNK` bytes at a time; cached per
    (path, size, mtime), so the same unchanged file is hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    # ctime and inode too: a rewrite with its mtime restored (cp -p, rsync -t, touch -r) changes
    # ctime, which no tool can set back
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    with _LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    digest = h.hexdigest()
    with _LOCK:
        _DIGESTS[key] = digest
    return digest


def default_checkpoint() -> Path:
    """The shipped default model's checkpoint file, checked (:func:`checkpoint_of`)."""
    return checkpoint_of(NAME)


def checkpoint_of(name: str) -> Path:
    """The file of the shipped model ``name``, checked: present, and its SHA-256 is the one
    recorded here. :class:`~octseg.core.errors.InputError` naming the file otherwise."""
    if name in ENSEMBLES:
        raise InputError(
            None,
            f"{name} is a shipped ensemble of {', '.join(ENSEMBLES[name])}: inference takes it "
            f"(checkpoint={name}); where one model is needed (init_from, distill.checkpoint) "
            "name one of its members",
        )
    if name not in names():
        raise InputError(
            None, f"no model named {name!r} ships with octseg; shipped: {_shipped_list()}"
        )
    path, expected = _file_and_hash(name)
    if not path.is_file():
        raise InputError(
            path,
            f"the shipped model {name} is missing: this octseg was installed without its "
            f"weights; {_how_to_get(name)}",
        )
    if not expected:
        raise InputError(
            path,
            f"no SHA-256 is recorded for the shipped model {name} "
            f"(octseg.model.shipped.{'SHA256' if name == NAME else 'NAMED'}), so it cannot be "
            "checked and is not used; "
            f"{_how_to_get(name)}",
        )
    actual = sha256_of(path)
    if actual != expected:
        raise InputError(
            path,
            f"the shipped model {name} fails its integrity check: SHA-256 expected {expected}, "
            f"found {actual}: the file is corrupted or was replaced; {_how_to_get(name)}",
        )
    return path


def resolve(value: str) -> str:
    """``value`` (a ``checkpoint=`` / ``init_from=`` entry) as a file: an existing file is
    returned unchanged (read and checked by the loader), a shipped model's name becomes its
    checked file (:func:`checkpoint_of`); a missing bare ``octseg-...`` name (no folder, no
    suffix) is refused with the shipped names (a misspelt model name, not a missing file)."""
    if Path(value).exists():
        return value
    bare = Path(value).name == value and not Path(value).suffix  # no folder, no extension
    if value in names() or value in ENSEMBLES or (bare and value.startswith("octseg-")):
        return str(checkpoint_of(value))
    return value


def shipped_name(path: str | Path | None) -> str | None:
    """The name of the shipped model whose file ``path`` is, else None."""
    if path is None or str(path) == "":
        return None
    try:
        target = Path(path).resolve()
    except OSError:
        return None
    for name in names():
        try:
            if target == _file_and_hash(name)[0].resolve():
                return name
        except OSError:
            continue
    return None


def model_with_content(path: str | Path) -> str | None:
    """The name of the shipped model whose recorded SHA-256 the file at ``path`` has (wherever
    it lies), else None: a file that only sits where a shipped model should is not that model."""
    try:
        digest = sha256_of(path)
    except OSError:
        return None
    return next((n for n in names() if _file_and_hash(n)[1] == digest), None)


def is_shipped(path: str | Path | None) -> bool:
    """Whether ``path`` is the file of a model that ships with octseg."""
    return shipped_name(path) is not None


def describe(path: str | Path | None, meta: dict[str, Any] | None) -> str:
    """One line naming the model in use: the shipped model by name, any other by its path; with
    the recipe and code version its meta records (``recipe``: a string, or the mapping
    tools/ship_model.py writes; ``octseg_version``)."""
    known = shipped_name(path)
    name = f"{known} (shipped with octseg)" if known else str(path or "in memory")
    return name + "".join(f"; {f}" for f in recipe_facts(meta))


def recipe_facts(meta: dict[str, Any] | None) -> list[str]:
    """The recipe and code version a checkpoint's meta records, as short phrases."""
    meta = meta or {}
    recipe = meta.get("recipe")
    facts = []
    if isinstance(recipe, str) and recipe.strip():
        facts.append(f"recipe {recipe.strip().splitlines()[0]}")
    elif isinstance(recipe, dict):
        facts.append(_recipe_line(recipe))
    version = meta.get("octseg_version")
    if not version and isinstance(recipe, dict):
        version = recipe.get("octseg_version")
    if version:
        facts.append(f"trained with octseg {version}")
    return [f for f in facts if f]


def _recipe_line(recipe: dict[str, Any]) -> str:
    """The short facts of a recipe mapping: its command (or experiment), seed and commit; never
    the whole config it also holds."""
    parts = []
    if recipe.get("command"):
        parts.append(str(recipe["command"]))
    elif recipe.get("experiment"):
        parts.append(f"experiment={recipe['experiment']}")
    if recipe.get("seed") is not None:
        parts.append(f"seed {recipe['seed']}")
    code = recipe.get("git_describe") or str(recipe.get("git_commit") or "")[:12]
    if code:
        parts.append(f"code {code}")
    return f"recipe {', '.join(parts)}" if parts else ""
