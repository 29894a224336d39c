"""abmll's safetensors reader and writer against the Python `safetensors` library (the pinned version), and
`abmll inspect` on checkpoints written by it.

Oracle round trip, for every dtype both libraries know:
 1. Python writes one file per dtype (random bytes: every bit pattern, NaN payloads included; plus a scalar, a
    zero-size and an odd-length tensor) and one mixed file with metadata.
 2. abmll's hidden Catch2 test [oracle] reads each file and writes, per file, a JSON of what it read (dtype, shape,
    bytes in hex) and the same tensors and metadata written back by abmll's writer.
 3. Here: what abmll read must equal Python's tensors byte for byte (abmll reads correctly), and the Python library
    must load abmll's files to byte-identical tensors and equal metadata (abmll writes correctly).
"""
import json
import os
import pathlib
import subprocess

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

# safetensors dtype name -> torch dtype: everything abmll supports (src/io/safetensors_format.h).
DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "U16": torch.uint16, "I16": torch.int16,
    "U32": torch.uint32, "I32": torch.int32, "U64": torch.uint64, "I64": torch.int64,
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
    "F8_E5M2FNUZ": torch.float8_e5m2fnuz, "F8_E8M0": torch.float8_e8m0fnu, "C64": torch.complex64,
}


def random_tensor(dtype: torch.dtype, shape, generator) -> torch.Tensor:
    """Random bytes viewed as `dtype` (0/1 for bool)."""
    numel = 1
    for d in shape:
        numel *= d
    if dtype == torch.bool:
        return torch.randint(0, 2, tuple(shape), generator=generator, dtype=torch.uint8).bool()
    size = torch.empty((), dtype=dtype).element_size()
    raw = torch.randint(0, 256, (numel * size,), generator=generator, dtype=torch.uint8)
    return raw.view(dtype).reshape(tuple(shape))


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_same(a: torch.Tensor, b: torch.Tensor, what: str):
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert tensor_bytes(a) == tensor_bytes(b), f"{what}: values differ"


@pytest.fixture(scope="module")
def tests_bin() -> str:
    path = os.environ.get("ABMLL_TESTS_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("ABMLL_TESTS_BIN must name the built abmll_tests binary (run through ctest)")
    return path


@pytest.fixture(scope="module")
def oracle(tests_bin, tmp_path_factory):
    """Writes the Python files, runs abmll over them; returns (root, {file name: (tensors, metadata)})."""
    root = tmp_path_factory.mktemp("oracle")
    (root / "in").mkdir()
    g = torch.Generator().manual_seed(1234)
    written = {}
    for name, dtype in DTYPES.items():
        tensors = {"x": random_tensor(dtype, (3, 5), g), "scalar": random_tensor(dtype, (), g),
                   "empty": random_tensor(dtype, (0, 4), g), "odd": random_tensor(dtype, (7,), g)}
        written[f"{name}.safetensors"] = (tensors, None)
    mixed = {f"t.{name}": random_tensor(dtype, (2, 3), g) for name, dtype in DTYPES.items()}
    written["mixed.safetensors"] = (mixed, {"format": "pt", "note": "ünïcode ✓", "empty": ""})
    for file, (tensors, metadata) in written.items():
        save_file(tensors, str(root / "in" / file), metadata=metadata)

    result = subprocess.run([tests_bin, "[oracle]"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "ABMLL_ORACLE_DIR": str(root)})
    assert result.returncode == 0, result.stdout + result.stderr
    return root, written


def test_abmll_reads_what_python_wrote(oracle):
    root, written = oracle
    for file, (tensors, _) in written.items():
        seen = json.loads((root / "out" / f"{file}.json").read_text())
        assert sorted(seen) == sorted(tensors), file
        for name, t in tensors.items():
            what = f"{file}: {name}"
            expected_name = next(k for k, v in DTYPES.items() if v == t.dtype)
            assert seen[name]["dtype"] == expected_name, what
            assert seen[name]["shape"] == list(t.shape), what
            assert seen[name]["hex"] == tensor_bytes(t).hex(), f"{what}: values differ"


def test_python_reads_what_abmll_wrote(oracle):
    root, written = oracle
    for file, (tensors, metadata) in written.items():
        path = root / "out" / file
        loaded = load_file(str(path))
        assert sorted(loaded) == sorted(tensors), file
        for name, t in tensors.items():
            assert_same(loaded[name], t, f"{file}: {name}")
        with safe_open(str(path), framework="pt") as f:
            assert (f.metadata() or None) == metadata, file
        # abmll pads the header with spaces to a multiple of 8, as the format asks.
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        assert n % 8 == 0 and raw[8] == ord("{"), file


def write_sharded(folder: pathlib.Path):
    """A checkpoint sharded as Hugging Face does it: two shards and model.safetensors.index.json."""
    g = torch.Generator().manual_seed(7)
    shards = {
        "model-00001-of-00002.safetensors": {"model.layers.2.mlp.w": torch.randn(4, 6, generator=g),
                                             "model.layers.10.mlp.w": torch.randn(3, generator=g).bfloat16()},
        "model-00002-of-00002.safetensors": {"model.embed_tokens.weight": torch.randn(16, 4, generator=g).half(),
                                             "lm_head.bias": torch.arange(5, dtype=torch.int64)},
    }
    weight_map, total = {}, 0
    for shard, tensors in shards.items():
        save_file(tensors, str(folder / shard), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = shard
            total += t.numel() * t.element_size()
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return {name: t for tensors in shards.values() for name, t in tensors.items()}, weight_map


def test_inspect_sharded_checkpoint(run_abmll, tmp_path):
    tensors, weight_map = write_sharded(tmp_path)
    total_params = sum(t.numel() for t in tensors.values())
    total_bytes = sum(t.numel() * t.element_size() for t in tensors.values())

    result = run_abmll("inspect", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["kind"] == "sharded"
    assert listing["total_parameters"] == total_params
    assert listing["total_bytes"] == total_bytes
    assert listing["metadata"] == {"total_size": str(total_bytes)}
    names = [row["name"] for row in listing["tensors"]]
    # Natural order: layers.2 before layers.10.
    assert names == ["lm_head.bias", "model.embed_tokens.weight", "model.layers.2.mlp.w", "model.layers.10.mlp.w"]
    dtype_names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}
    for row in listing["tensors"]:
        t = tensors[row["name"]]
        assert row["dtype"] == dtype_names[t.dtype]
        assert row["shape"] == list(t.shape)
        assert row["parameters"] == t.numel()
        assert row["bytes"] == t.numel() * t.element_size()
        assert row["file"] == weight_map[row["name"]]

    text = run_abmll("inspect", tmp_path / "model.safetensors.index.json")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "sharded checkpoint, 2 shards" in lines[0]
    row = next(line for line in lines if line.startswith("model.embed_tokens.weight"))
    assert row.split() == ["model.embed_tokens.weight", "F16", "[16,", "4]", "64", "128",
                           "model-00002-of-00002.safetensors"]
    assert lines[-1].startswith(f"4 tensors, {total_params} parameters")
    assert f"{total_bytes} bytes" in lines[-1]


def test_inspect_single_file(run_abmll, tmp_path):
    save_file({"w": torch.zeros(2, 3)}, str(tmp_path / "adapter.safetensors"), metadata={"format": "pt"})
    result = run_abmll("inspect", tmp_path / "adapter.safetensors")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("adapter.safetensors (file)")
    assert "metadata: format = pt" in lines
    assert lines[2].split() == ["name", "dtype", "shape", "parameters", "bytes"]
    assert lines[3].split() == ["w", "F32", "[2,", "3]", "6", "24"]
    assert lines[-1] == "1 tensor, 6 parameters (6), 24 bytes (24 B)"


@pytest.mark.parametrize("content, problem", [
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{}", "exceeds the file size"),
    ((8).to_bytes(8, "little") + b'{"a":1} ', "tensor 'a': must be an object"),
    (b"\x01\x00", "too few"),
])
def test_inspect_malformed_file_exits_2(run_abmll, tmp_path, content, problem):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    result = run_abmll("inspect", path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "broken.safetensors" in result.stderr and problem in result.stderr, result.stderr


def test_inspect_missing_path_exits_2(run_abmll, tmp_path):
    result = run_abmll("inspect", tmp_path / "nothing")
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr
