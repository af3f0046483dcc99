"""fingerprint(): stable across processes, sensitive to every byte / dtype / shape / name, fast."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from failwidgets.compute.cache import EmbeddingCache
from failwidgets.compute.hashing import fingerprint


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


class TinyNetTwin(TinyNet):
    """Same parameters, another class."""


def _tiny(seed=0):
    torch.manual_seed(seed)
    return TinyNet()


def test_hand_computed_encoding_of_a_string():
    # documented encoding: tag "s", 8-byte little-endian length, UTF-8 bytes
    payload = b"layer4"
    expected = hashlib.sha256(b"s" + len(payload).to_bytes(8, "little") + payload).hexdigest()
    assert fingerprint("layer4") == expected


def test_same_content_in_a_new_process_gives_the_same_fingerprint():
    script = textwrap.dedent(
        """
        import numpy as np, torch
        from failwidgets.compute.hashing import fingerprint
        from tests.compute.test_fingerprint import _tiny
        print(fingerprint(_tiny()))
        print(fingerprint(np.arange(12, dtype=np.float32).reshape(3, 4)))
        print(fingerprint({"b": [1, 2.5, "x"], "a": {"z": None, "y": True}}))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str-hash salt than this process
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, check=True
    ).stdout.split()
    assert out == [
        fingerprint(_tiny()),
        fingerprint(np.arange(12, dtype=np.float32).reshape(3, 4)),
        fingerprint({"a": {"y": True, "z": None}, "b": (1, 2.5, "x")}),
    ]


def test_changing_any_single_weight_changes_the_fingerprint():
    model = _tiny()
    seen = {fingerprint(model)}
    n_changes = 0
    for tensor in model.state_dict().values():  # includes BatchNorm running stats and counter
        flat = tensor.view(-1)
        for i in {0, flat.numel() - 1}:
            old = flat[i].clone()
            flat[i] += 1
            seen.add(fingerprint(model))
            flat[i] = old
            n_changes += 1
    assert len(seen) == n_changes + 1
    assert fingerprint(model) == fingerprint(_tiny())  # restored


def test_model_dtype_class_structure_and_hyperparameters_count():
    base = fingerprint(_tiny())
    assert fingerprint(_tiny().double()) != base
    assert fingerprint(_tiny(seed=1)) != base
    twin = TinyNetTwin()
    twin.load_state_dict(_tiny().state_dict())
    assert fingerprint(twin) != base  # same weights, another class

    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3, stride=1))
    torch.manual_seed(0)
    b = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2))
    assert fingerprint(a) != fingerprint(b)  # weights equal, stride differs (extra_repr)

    torch.manual_seed(0)
    named = nn.ModuleDict({"first": nn.Linear(2, 2)})
    torch.manual_seed(0)
    renamed = nn.ModuleDict({"second": nn.Linear(2, 2)})
    assert fingerprint(named) != fingerprint(renamed)


def test_arrays_and_tensors():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    fa = fingerprint(a)
    assert fingerprint(torch.from_numpy(a)) == fa  # same dtype, shape, values
    assert fingerprint(a.astype(">f4")) == fa  # byte order does not matter
    assert fingerprint(np.asfortranarray(a)) == fa  # memory layout does not matter
    assert fingerprint(a.copy()) == fa
    assert fingerprint(a.reshape(4, 3)) != fa  # same bytes, other shape
    assert fingerprint(a.view(np.int32)) != fa  # same bytes, other dtype
    assert fingerprint(a.astype(np.float64)) != fa
    b = a.copy()
    b[2, 3] = np.nextafter(b[2, 3], np.float32(100))  # one ulp
    assert fingerprint(b) != fa
    assert fingerprint(torch.ones(3, dtype=torch.bfloat16)) != fingerprint(torch.ones(3, dtype=torch.float16))
    assert fingerprint(np.zeros((0, 3))) != fingerprint(np.zeros((3, 0)))


def test_plain_values_are_canonical_and_distinct():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": (1, 2), "a": 1})
    assert fingerprint(np.float32(0.5)) == fingerprint(0.5)
    assert fingerprint(np.int64(7)) == fingerprint(7)
    values = [1, 1.0, "1", b"1", True, None, [1], {"1": 1}, np.array(1), [], "", 0, False]
    assert len({fingerprint(v) for v in values}) == len(values)
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])  # length-prefixed, no ambiguity


class _HasFingerprint:
    def __init__(self, fp):
        self.fingerprint = fp


class _Method:
    def fingerprint(self):
        return {"world": 3}


def test_objects_with_a_fingerprint_attribute_use_it():
    assert fingerprint(_HasFingerprint("abc")) == fingerprint(_HasFingerprint("abc"))
    assert fingerprint(_HasFingerprint("abc")) != fingerprint(_HasFingerprint("abd"))
    assert fingerprint(_Method()) == fingerprint(_HasFingerprint({"world": 3}))

    class Declared(TinyNet):
        fingerprint = "v1"

    torch.manual_seed(0)
    m1 = Declared()
    torch.manual_seed(1)
    m2 = Declared()
    assert fingerprint(m1) == fingerprint(m2)  # the declared identity wins over the weights


def test_unsupported_types_raise_type_error_naming_where():
    with pytest.raises(TypeError, match=r"obj: cannot fingerprint an object of type builtins.object"):
        fingerprint(object())
    with pytest.raises(TypeError, match=r"obj\['a'\]\[1\]: .*builtins.set"):
        fingerprint({"a": [1, {2}]})
    with pytest.raises(TypeError, match="dtype object"):
        fingerprint(np.array([object()]))


def test_cache_key_changes_with_weights_dtype_preprocessing_layer_and_dataset():
    model = _tiny()
    parts = {
        "model": fingerprint(model),
        "preprocess": "resize64|imagenet-norm",
        "layer": "bn",
        "data": "world:abc123/val",
    }
    keys = {EmbeddingCache.key(parts)}
    with torch.no_grad():
        model.fc.bias[0] += 1e-3
    variants = [
        {**parts, "model": fingerprint(model)},
        {**parts, "model": fingerprint(_tiny().half())},
        {**parts, "preprocess": "resize64|no-norm"},
        {**parts, "layer": "conv"},
        {**parts, "data": "world:abc123/test"},
    ]
    keys |= {EmbeddingCache.key(v) for v in variants}
    assert len(keys) == len(variants) + 1
