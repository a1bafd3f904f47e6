"""Save files are untrusted input: truncated, bit-flipped and foreign files make
``bg.load`` raise ValueError — never another exception, a hang, or code execution."""

import io
import json
import pickle
import shutil
import signal
import zipfile
from contextlib import contextmanager

import arviz as az
import numpy as np
import pytest

import bayes_gmm as bg

META, ARRAYS, IDATA = "bayes_gmm.json", "arrays.npz", "idata.nc"


@contextmanager
def _deadline(seconds=20):
    """A load that runs this long is a hang (SIGALRM interrupts Python-level loops)."""
    def boom(*_):
        raise TimeoutError(f"load took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _load_outcome(path):
    """'ok' with the object, or 'value_error'; any other exception fails the test."""
    with _deadline():
        try:
            return "ok", bg.load(path)
        except ValueError as e:
            assert str(e), "the ValueError must say what is wrong"
            return "value_error", e


@pytest.fixture(scope="module")
def saves(tmp_path_factory, two_clusters):
    X = two_clusters[0]
    root = tmp_path_factory.mktemp("saves")
    gm = bg.GaussianMixture(2, random_state=0).fit(X)
    bg.save(gm, root / "gm")
    rng = np.random.default_rng(0)
    idata = az.from_dict(posterior={"weights": rng.dirichlet([1, 1], size=(2, 20))},
                         coords={"component": [0, 1]}, dims={"weights": ["component"]})
    bg.save(idata, root / "idata")
    return {"gm": (root / "gm", gm), "idata": (root / "idata", idata)}


def _copy(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def _same_gm(a, b):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_intact_saves_load(saves):
    kind, gm = _load_outcome(saves["gm"][0])
    assert kind == "ok"
    _same_gm(gm, saves["gm"][1])
    kind, idata = _load_outcome(saves["idata"][0])
    assert kind == "ok"
    np.testing.assert_array_equal(idata.posterior["weights"].values,
                                  saves["idata"][1].posterior["weights"].values)


@pytest.mark.parametrize("which,member", [("gm", META), ("gm", ARRAYS), ("idata", IDATA),
                                          ("idata", META)])
def test_truncated_files_raise_value_error(saves, tmp_path, which, member):
    src = saves[which][0]
    data = (src / member).read_bytes()
    n = len(data)
    offsets = sorted({0, 1, 2, 7, 8, 16, 64, n // 7, n // 3, n // 2, 2 * n // 3, n - 64,
                      n - 22, n - 8, n - 2, n - 1} & set(range(n)))
    for cut in offsets:
        dst = _copy(src, tmp_path / f"cut{cut}")
        (dst / member).write_bytes(data[:cut])
        kind, _ = _load_outcome(dst)
        assert kind == "value_error", f"{member} truncated to {cut} of {n} bytes loaded"


@pytest.mark.parametrize("which,member", [("gm", ARRAYS), ("idata", IDATA)])
def test_bit_flips_are_caught_or_harmless(saves, tmp_path, which, member):
    """Flipped bits in the binary members either raise ValueError or leave the loaded
    values bit-identical (the flip hit bytes that carry no data, e.g. a zip timestamp):
    a corrupted save never loads silently with different numbers."""
    src, original = saves[which]
    data = bytearray((src / member).read_bytes())
    rng = np.random.default_rng(1234)
    outcomes = []
    for trial in range(30):
        flipped = bytearray(data)
        for pos in rng.choice(len(data), size=rng.integers(1, 4), replace=False):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        dst = _copy(src, tmp_path / f"flip{trial}")
        (dst / member).write_bytes(bytes(flipped))
        kind, obj = _load_outcome(dst)
        outcomes.append(kind)
        if kind == "ok" and which == "gm":
            _same_gm(obj, original)
    assert "value_error" in outcomes


def test_bit_flips_in_the_json_never_crash(saves, tmp_path):
    src = saves["gm"][0]
    data = bytearray((src / META).read_bytes())
    rng = np.random.default_rng(99)
    for trial in range(40):
        flipped = bytearray(data)
        pos = int(rng.integers(0, len(data)))
        flipped[pos] ^= 1 << int(rng.integers(0, 8))
        dst = _copy(src, tmp_path / f"jflip{trial}")
        (dst / META).write_bytes(bytes(flipped))
        _load_outcome(dst)          # ValueError or a load; nothing else


FOREIGN = {
    "empty": b"",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64)),
    "random": np.random.default_rng(5).bytes(2000),
    "csv": b"a,b\n1,2\n3,4\n",
    "zip of text": None,                # filled below
    "pickle": pickle.dumps({"format": "bayes_gmm", "version": 1}),
    "utf16 json": json.dumps({"format": "bayes_gmm"}).encode("utf-16"),
}


def _zip_of_text():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not an array")
    return buf.getvalue()


@pytest.mark.parametrize("content", sorted(FOREIGN))
@pytest.mark.parametrize("member", [META, ARRAYS, IDATA])
def test_foreign_member_files(saves, tmp_path, member, content):
    src = saves["idata" if member == IDATA else "gm"][0]
    dst = _copy(src, tmp_path / "foreign")
    data = _zip_of_text() if content == "zip of text" else FOREIGN[content]
    (dst / member).write_bytes(data)
    kind, _ = _load_outcome(dst)
    assert kind == "value_error"


@pytest.mark.parametrize("meta", [
    [], 1, "bayes_gmm", None, {"format": "bayes_gmm"},
    {"format": "bayes_gmm", "version": 99, "kind": "GaussianMixture", "settings": {},
     "attributes": {}},
    {"format": "bayes_gmm", "version": "1", "kind": "GaussianMixture", "settings": {},
     "attributes": {}},
    {"format": "bayes_gmm", "version": 1, "kind": "os.system", "settings": {},
     "attributes": {}},
    {"format": "bayes_gmm", "version": 1, "kind": "GaussianMixture", "settings": [],
     "attributes": {}},
    {"format": "bayes_gmm", "version": 1, "kind": "GaussianMixture",
     "settings": {"no_such_parameter": {"type": "json", "value": 1}}, "attributes": {}},
    {"format": "bayes_gmm", "version": 1, "kind": "GaussianMixture", "settings": {},
     "attributes": {"weights_": {"type": "array", "key": "missing"}}},
    {"format": "bayes_gmm", "version": 1, "kind": "GaussianMixture", "settings": {},
     "attributes": {"weights_": {"type": "eval", "value": "__import__('os')"}}},
    {"format": "bayes_gmm", "version": 1, "kind": "GMMParams", "settings": {},
     "attributes": {}},
], ids=lambda m: json.dumps(m)[:40])
def test_foreign_json_structures(saves, tmp_path, meta):
    dst = _copy(saves["gm"][0], tmp_path / "meta")
    (dst / META).write_text(json.dumps(meta))
    kind, _ = _load_outcome(dst)
    assert kind == "value_error"


def test_not_a_directory_or_empty(tmp_path):
    f = tmp_path / "file.npz"
    f.write_bytes(b"PK\x03\x04")
    assert _load_outcome(f)[0] == "value_error"
    (tmp_path / "empty").mkdir()
    assert _load_outcome(tmp_path / "empty")[0] == "value_error"


class _Exploit:
    """Unpickling this creates ``marker``: the proof that pickle code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _npy_bytes_of_object_array(payload):
    """A .npy member whose dtype is object: numpy would unpickle its body."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    pad = -(10 + len(header) + 1) % 64          # numpy aligns the data to 64 bytes
    header = header + " " * pad + "\n"
    return (b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()
            + pickle.dumps(np.array([payload], dtype=object)))


def test_pickle_payloads_never_execute(saves, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    # Sanity: the payload really runs when unpickled.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()

    src = saves["gm"][0]
    # (1) arrays.npz replaced by a raw pickle; (2) an object-dtype member inside the npz;
    # (3) the JSON and (4) the NetCDF replaced by the pickle.
    dst = _copy(src, tmp_path / "raw")
    (dst / ARRAYS).write_bytes(payload)
    assert _load_outcome(dst)[0] == "value_error"

    # Sanity: numpy itself would run the object member if pickles were allowed.
    np.load(io.BytesIO(_npy_bytes_of_object_array(_Exploit(marker))), allow_pickle=True)
    assert marker.exists()
    marker.unlink()

    dst = _copy(src, tmp_path / "objnpy")
    with zipfile.ZipFile(dst / ARRAYS, "a") as z:
        z.writestr("attributes.weights_.npy", _npy_bytes_of_object_array(_Exploit(marker)))
    with zipfile.ZipFile(dst / ARRAYS) as z:
        names = [i.filename for i in z.infolist()]
    assert names.count("attributes.weights_.npy") == 2
    # Also the only member with that name, for readers that take the first entry.
    dst2 = _copy(src, tmp_path / "objnpy2")
    with zipfile.ZipFile(dst / ARRAYS) as zin, zipfile.ZipFile(dst2 / ARRAYS, "w") as zout:
        seen = set()
        for info in reversed(zin.infolist()):
            if info.filename not in seen:
                seen.add(info.filename)
                zout.writestr(info.filename, zin.read(info))
    for d in (dst, dst2):
        assert _load_outcome(d)[0] == "value_error"

    dst = _copy(src, tmp_path / "json")
    (dst / META).write_bytes(payload)
    assert _load_outcome(dst)[0] == "value_error"

    dst = _copy(saves["idata"][0], tmp_path / "nc")
    (dst / IDATA).write_bytes(payload)
    assert _load_outcome(dst)[0] == "value_error"

    assert not marker.exists(), "a pickle payload was executed by bg.load"


def _meta(p):
    return json.loads((p / META).read_text())


def _write_meta(p, m):
    (p / META).write_text(json.dumps(m))


def test_json_nesting_bomb_is_value_error(saves, tmp_path):
    p = _copy(saves["gm"][0], tmp_path / "gm")
    (p / META).write_text("[" * 100_000 + "]" * 100_000)
    assert _load_outcome(p)[0] == "value_error"


def test_deeply_nested_entry_is_value_error(saves, tmp_path):
    p = _copy(saves["gm"][0], tmp_path / "gm")
    m = _meta(p)
    m["settings"]["n_components"] = "DEEP"
    deep = '{"type": "list", "value": [' * 5000 + '{"type": "json", "value": 0}' + "]}" * 5000
    (p / META).write_text(json.dumps(m).replace('"DEEP"', deep))
    assert _load_outcome(p)[0] == "value_error"


@pytest.mark.parametrize("name", ["__class__", "__dict__", "not an identifier", "fit"])
def test_attribute_names_that_are_not_fitted_state_are_refused(saves, tmp_path, name):
    p = _copy(saves["gm"][0], tmp_path / "gm")
    m = _meta(p)
    m["attributes"][name] = {"type": "json", "value": {} if name == "__dict__" else "x"}
    _write_meta(p, m)
    outcome, err = _load_outcome(p)
    assert outcome == "value_error" and repr(name) in str(err)


def test_inferencedata_kind_without_idata_is_value_error(saves, tmp_path):
    p = _copy(saves["gm"][0], tmp_path / "gm")
    m = _meta(p)
    m["kind"] = "InferenceData"
    _write_meta(p, m)
    outcome, err = _load_outcome(p)
    assert outcome == "value_error" and "idata" in str(err)


def _gm_with_map_flag(saves, tmp_path):
    """A GaussianMixture save whose JSON claims a map/ sub-save that was never written."""
    p = _copy(saves["gm"][0], tmp_path / "gm")
    m = _meta(p)
    m["map"] = True
    _write_meta(p, m)
    return p


def test_map_flag_without_map_directory_is_value_error(saves, tmp_path):
    outcome, err = _load_outcome(_gm_with_map_flag(saves, tmp_path))
    assert outcome == "value_error" and "map" in str(err)


def test_map_symlink_loop_is_value_error(saves, tmp_path):
    p = _gm_with_map_flag(saves, tmp_path)
    (p / "map").symlink_to(p / "map")
    assert _load_outcome(p)[0] == "value_error"


def test_npy_header_declaring_a_huge_array_is_value_error(saves, tmp_path):
    """A 60-byte member that declares 8 TB must be refused before anything is allocated."""
    p = _copy(saves["gm"][0], tmp_path / "gm")
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    hdr = hdr + b" " * (117 - len(hdr)) + b"\n"
    with zipfile.ZipFile(p / ARRAYS, "w") as z:
        z.writestr("attributes.weights_.npy",
                   b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\0" * 16)
    outcome, err = _load_outcome(p)
    assert outcome == "value_error" and "weights_" in str(err)
