"""The shipped model's file is used only when it is there and its SHA-256 is the recorded one;
otherwise a one-line error names the file and says what is wrong and what to do."""

from __future__ import annotations

import hashlib
import os

import pytest
from shipped_helpers import (
    RECIPE,
    VERSION,
    sha256,
    tiny_checkpoint,
    use_as_ensemble,
    use_as_named,
    use_as_shipped,
)

from octseg.core.errors import InputError
from octseg.model import shipped
from octseg.model.checkpoint import load_checkpoint


def test_the_shipped_location_is_inside_the_package():
    assert shipped.WEIGHTS.name == f"{shipped.NAME}.ckpt"
    assert shipped.WEIGHTS.parent == shipped.Path(shipped.__file__).resolve().parent / "weights"


def test_a_file_with_the_recorded_hash_is_returned_and_loads(tmp_path, monkeypatch):
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"))
    assert shipped.default_checkpoint() == ck
    model, meta = load_checkpoint(shipped.default_checkpoint())
    assert meta["recipe"] == RECIPE and not model.training
    assert shipped.is_shipped(ck) and not shipped.is_shipped(tmp_path / "other.ckpt")
    line = shipped.describe(ck, meta)
    assert line.startswith(f"{shipped.NAME} (shipped with octseg)") and RECIPE in line
    assert line.endswith(f"recipe {RECIPE}; trained with octseg {VERSION}")
    assert shipped.describe(tmp_path / "mine.ckpt", {}) == str(tmp_path / "mine.ckpt")


def test_describe_gives_the_short_facts_of_a_recipe_mapping(tmp_path, monkeypatch):
    """The recipe as tools/ship_model.py stores it: one line, never the whole config."""
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"))
    recipe = {
        "experiment": "default",
        "seed": 42,
        "command": "python train.py experiment=default",
        "config_yaml": "task_name: default\nseed: 42\n",
        "octseg_version": "0.1.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_describe": "0123456-dirty",
    }
    line = shipped.describe(ck, {"recipe": recipe})
    assert line == (
        f"{shipped.NAME} (shipped with octseg); recipe python train.py experiment=default, "
        "seed 42, code 0123456-dirty; trained with octseg 0.1.0"
    )
    no_describe = {k: v for k, v in recipe.items() if k not in ("command", "git_describe")}
    assert shipped.describe(ck, {"recipe": no_describe, "octseg_version": "0.2"}).endswith(
        "recipe experiment=default, seed 42, code 0123456789ab; trained with octseg 0.2"
    )


def test_upper_case_recorded_hash_is_accepted(tmp_path, monkeypatch):
    ck = tiny_checkpoint(tmp_path / "model.ckpt")
    use_as_shipped(monkeypatch, ck, sha256(ck).upper())
    assert shipped.default_checkpoint() == ck


def test_a_missing_file_is_refused_with_what_to_do(tmp_path, monkeypatch):
    gone = tmp_path / "weights" / "octseg-default-v1.ckpt"
    use_as_shipped(monkeypatch, gone, "0" * 64)
    with pytest.raises(InputError) as err:
        shipped.default_checkpoint()
    msg = str(err.value)
    assert msg.startswith(f"{gone}: ")
    assert "missing" in msg and "installed without its weights" in msg
    assert "checkpoint=CKPT" in msg and "--checkpoint CKPT" in msg


def test_a_wrong_hash_is_refused_with_both_hashes(tmp_path, monkeypatch):
    ck = tiny_checkpoint(tmp_path / "model.ckpt")
    wrong = hashlib.sha256(b"another file").hexdigest()
    use_as_shipped(monkeypatch, ck, wrong)
    with pytest.raises(InputError) as err:
        shipped.default_checkpoint()
    msg = str(err.value)
    assert msg.startswith(f"{ck}: ")
    assert f"expected {wrong}" in msg and f"found {sha256(ck)}" in msg
    assert "corrupted or was replaced" in msg


def test_a_changed_file_is_refused_although_it_passed_before(tmp_path, monkeypatch):
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"))
    assert shipped.default_checkpoint() == ck
    data = bytearray(ck.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte, same size
    ck.write_bytes(bytes(data))
    st = ck.stat()
    os.utime(ck, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later mtime
    with pytest.raises(InputError, match="fails its integrity check"):
        shipped.default_checkpoint()


def test_a_changed_file_with_its_mtime_restored_is_refused(tmp_path, monkeypatch):
    """cp -p / rsync -t / touch -r put the old mtime back on a rewritten file; its ctime moves."""
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"))
    assert shipped.default_checkpoint() == ck
    st = ck.stat()
    data = bytearray(ck.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte, same size
    ck.write_bytes(bytes(data))
    os.utime(ck, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime restored
    assert ck.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(InputError, match="fails its integrity check"):
        shipped.default_checkpoint()


def test_no_recorded_hash_is_refused(tmp_path, monkeypatch):
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"), "")
    with pytest.raises(InputError, match="no SHA-256 is recorded"):
        shipped.default_checkpoint()
    assert ck.is_file()


def test_an_unchanged_file_is_hashed_once(tmp_path, monkeypatch):
    """The verdict is cached per (path, size, mtime, inode, ctime): a batch job checks the file
    once."""
    ck = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "model.ckpt"))
    calls = []
    real = hashlib.sha256

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(shipped.hashlib, "sha256", counting)
    for _ in range(3):
        assert shipped.default_checkpoint() == ck
    assert len(calls) == 1
    assert shipped.sha256_of(ck) == sha256(ck)
    # a hash computed in chunks smaller than the file is the same
    monkeypatch.setattr(shipped, "CHUNK", 1000)
    monkeypatch.setattr(shipped, "_DIGESTS", {})
    assert shipped.sha256_of(ck) == sha256(ck) and ck.stat().st_size > 10 * 1000


CALCIUM = "octseg-calcium-v1"


def test_a_named_shipped_model_resolves_to_its_checked_file(tmp_path, monkeypatch):
    """checkpoint=NAME / init_from=NAME: the named model's file, checked like the default's;
    anything that is not a shipped model's name stays a path for the loader."""
    default = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "default.ckpt"))
    ck = use_as_named(monkeypatch, tmp_path / "weights", CALCIUM)
    assert shipped.names() == (shipped.NAME, CALCIUM)
    assert shipped.resolve(CALCIUM) == str(ck) and shipped.checkpoint_of(CALCIUM) == ck
    assert shipped.resolve(shipped.NAME) == str(default)
    assert shipped.resolve("runs/best.ckpt") == "runs/best.ckpt"
    assert shipped.shipped_name(ck) == CALCIUM and shipped.shipped_name(default) == shipped.NAME
    assert shipped.shipped_name(tmp_path / "mine.ckpt") is None
    _, meta = load_checkpoint(ck)
    assert shipped.describe(ck, meta).startswith(f"{CALCIUM} (shipped with octseg); recipe")
    with pytest.raises(InputError, match="no model named 'octseg-lipid-v9' ships with octseg"):
        shipped.checkpoint_of("octseg-lipid-v9")


def test_a_shipped_model_is_known_by_its_content_wherever_it_lies(tmp_path, monkeypatch):
    """model_with_content: a copy of a shipped model's file elsewhere is that model; a file at
    the shipped location with other content, or no file, is none."""
    default = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "default.ckpt"))
    ck = use_as_named(monkeypatch, tmp_path / "weights", CALCIUM)
    copy = tmp_path / "elsewhere" / "copy.ckpt"
    copy.parent.mkdir()
    copy.write_bytes(ck.read_bytes())
    assert shipped.model_with_content(copy) == CALCIUM
    assert shipped.model_with_content(default) == shipped.NAME
    ck.write_bytes(ck.read_bytes() + b"x")  # the shipped location, other content
    assert shipped.model_with_content(ck) is None
    assert shipped.model_with_content(tmp_path / "missing.ckpt") is None


def test_a_named_model_with_a_wrong_hash_or_missing_is_refused(tmp_path, monkeypatch):
    ck = use_as_named(monkeypatch, tmp_path, CALCIUM, "1" * 64)
    with pytest.raises(InputError) as err:
        shipped.resolve(CALCIUM)
    msg = str(err.value)
    assert msg.startswith(f"{ck}: ") and f"shipped model {CALCIUM} fails its integrity" in msg
    assert f"weights/{CALCIUM}.ckpt" in msg
    ck.unlink()
    with pytest.raises(InputError, match=f"the shipped model {CALCIUM} is missing"):
        shipped.resolve(CALCIUM)


def test_an_existing_file_wins_over_a_name_and_a_misspelt_name_is_refused(tmp_path, monkeypatch):
    use_as_named(monkeypatch, tmp_path / "weights", CALCIUM)
    monkeypatch.chdir(tmp_path)
    own = tiny_checkpoint(tmp_path / CALCIUM)  # a file of the user's that happens to be so named
    assert shipped.resolve(CALCIUM) == CALCIUM and own.is_file()
    with pytest.raises(InputError) as err:
        shipped.resolve("octseg-calcium-v9")
    assert f"shipped: {shipped.NAME}, {CALCIUM}" in str(err.value)
    assert shipped.resolve("octseg-mine.ckpt") == "octseg-mine.ckpt"  # a path: the loader's
    assert shipped.resolve("octseg-runs/last") == "octseg-runs/last"  # a folder: a path too


def test_octseg_models_lists_and_checks_every_shipped_model(tmp_path, monkeypatch, capsys):
    from octseg.cli import main as octseg

    default = use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "default.ckpt"))
    calcium = use_as_named(monkeypatch, tmp_path / "weights", CALCIUM)
    assert octseg(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{shipped.NAME} (default): ok" in out and f"{CALCIUM}: ok" in out
    assert f"file: {default}" in out and f"file: {calcium}" in out
    assert f"recipe {RECIPE}" in out and "for: calcium and struts" in out
    monkeypatch.setattr(shipped, "NAMED", {CALCIUM: "3" * 64})  # the calcium file is damaged
    assert octseg(["models"]) == 1
    out = capsys.readouterr().out
    assert f"{shipped.NAME} (default): ok" in out
    assert f"{CALCIUM}: FAILED: {calcium}: the shipped model {CALCIUM} fails its integrity" in out


ENSEMBLE, MEMBERS = "octseg-calcium-v2", ("octseg-calcium-v1", "octseg-calcium-fdv-s42")


def test_a_shipped_ensemble_expands_to_its_members_checked_files(tmp_path, monkeypatch):
    """checkpoint=ENSEMBLE (alone or in a list) is checkpoint=[its members' files], each checked;
    other entries keep their meaning; a member with a wrong SHA-256 stops it."""
    from octseg.infer.pipeline import _shipped_files

    files = [str(p) for p in use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)]
    assert shipped.expand(ENSEMBLE) == list(MEMBERS) and shipped.expand("a.ckpt") == ["a.ckpt"]
    assert _shipped_files(ENSEMBLE) == files == _shipped_files([ENSEMBLE])
    assert _shipped_files([ENSEMBLE, "mine.ckpt"]) == [*files, "mine.ckpt"]
    assert _shipped_files(MEMBERS[1]) == files[1]
    monkeypatch.setattr(shipped, "NAMED", {MEMBERS[0]: sha256(files[0]), MEMBERS[1]: "2" * 64})
    with pytest.raises(InputError, match=f"shipped model {MEMBERS[1]} fails its integrity"):
        _shipped_files(ENSEMBLE)


def test_an_ensembles_name_where_one_model_is_needed_is_refused_with_its_members(
    tmp_path, monkeypatch
):
    """init_from= / distill.checkpoint= resolve one model: an ensemble's name is refused, naming
    its members; a misspelt name lists the ensembles among what ships; a file of the
    ensemble's name in the working folder is a path."""
    use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    with pytest.raises(InputError) as err:
        shipped.resolve(ENSEMBLE)
    msg = str(err.value)
    assert f"{ENSEMBLE} is a shipped ensemble of {', '.join(MEMBERS)}" in msg
    assert "name one of its members" in msg
    with pytest.raises(InputError, match=f"shipped: .*{ENSEMBLE} \\(ensemble\\)"):
        shipped.resolve("octseg-calcium-v9")
    monkeypatch.chdir(tmp_path)
    tiny_checkpoint(tmp_path / ENSEMBLE)
    assert shipped.expand(ENSEMBLE) == [ENSEMBLE] and shipped.resolve(ENSEMBLE) == ENSEMBLE


def test_a_member_listed_beside_its_ensemble_is_refused_naming_the_ensemble(tmp_path, monkeypatch):
    files = use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    for listed in ([ENSEMBLE, MEMBERS[0]], [MEMBERS[1], ENSEMBLE], [ENSEMBLE, ENSEMBLE]):
        with pytest.raises(InputError, match=f"member of the shipped ensemble {ENSEMBLE}"):
            shipped.expand_all(listed)
    assert shipped.expand_all([ENSEMBLE, "mine.ckpt"]) == [*MEMBERS, "mine.ckpt"]
    assert shipped.checkpoint_files([ENSEMBLE]) == [f.resolve() for f in files]
    assert shipped.checkpoint_files([tmp_path / "x.ckpt"]) == [tmp_path / "x.ckpt"]


def test_an_ensemble_is_known_by_its_members_files_in_order(tmp_path, monkeypatch):
    files = use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    assert shipped.ensemble_named(files) == ENSEMBLE
    assert shipped.ensemble_named([str(f) for f in files]) == ENSEMBLE
    assert shipped.ensemble_named(files[::-1]) is None  # another order: another weighting
    assert shipped.ensemble_named(files[:1]) is None


def test_distill_from_an_ensembles_name_is_refused(tmp_path, monkeypatch):
    from octseg.train.distill import teacher_record

    use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    with pytest.raises(InputError, match=f"{ENSEMBLE} is a shipped ensemble"):
        teacher_record({"checkpoint": ENSEMBLE, "weight": 1.0})


def test_init_from_an_ensembles_name_is_refused_by_training(tmp_path, monkeypatch):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from octseg.train.setup import read_init

    use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    configs = Path(shipped.__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=finetune", f"init_from={ENSEMBLE}"])
    with pytest.raises(InputError, match=f"{ENSEMBLE} is a shipped ensemble"):
        read_init(cfg)


def test_octseg_models_lists_each_ensemble_ok_only_when_its_members_are(
    tmp_path, monkeypatch, capsys
):
    from octseg.cli import main as octseg

    use_as_shipped(monkeypatch, tiny_checkpoint(tmp_path / "default.ckpt"))
    files = use_as_ensemble(monkeypatch, tmp_path / "w", ENSEMBLE, MEMBERS)
    assert octseg(["models"]) == 0
    out = capsys.readouterr().out
    assert f"{ENSEMBLE} (ensemble): ok" in out
    assert f"the mean of the class probabilities of {', '.join(MEMBERS)}" in out
    files[1].write_bytes(files[1].read_bytes() + b"x")  # a member damaged
    monkeypatch.setattr(shipped, "_DIGESTS", {})
    assert octseg(["models"]) == 1
    out = capsys.readouterr().out
    assert f"{ENSEMBLE} (ensemble): FAILED: member(s) {MEMBERS[1]} failed their check" in out
