"""Each kind of image source, on small data made here."""

import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from failwidgets.data import (
    ArraySource,
    FileSource,
    FolderDatasetSource,
    HFDatasetSource,
    SourceReadError,
    TarShardSource,
    TorchDatasetSource,
    WorldSplitSource,
    as_source,
)


def _imgs(n=6, h=9, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _write_pngs(root, imgs, labels, fmt="png"):
    paths = []
    for i, (im, y) in enumerate(zip(imgs, labels)):
        d = os.path.join(root, f"class{y}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"{i:03d}.{fmt}")
        Image.fromarray(im).save(p, **({"lossless": True} if fmt == "webp" else {}))
        paths.append(p)
    return paths


def test_uint8_array_both_layouts_and_labels():
    imgs = _imgs()
    a = as_source(imgs, labels=[0, 1, 0, 1, 2, 2])
    assert isinstance(a, ArraySource) and len(a) == 6
    np.testing.assert_array_equal(a.image(2), imgs[2])
    np.testing.assert_array_equal(a.image(-1), imgs[-1])
    b = as_source(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(b.image(4), imgs[4])
    assert a.labels.tolist() == [0, 1, 0, 1, 2, 2] and a.labels.dtype == np.int64
    assert a.identity() == as_source(imgs.copy()).identity()
    changed = imgs.copy()
    changed[5, 0, 0, 0] ^= 1
    assert as_source(changed).identity() != a.identity()
    with pytest.raises(IndexError, match="index"):
        a.image(6)


def test_float_tensor_keeps_exact_pixels():
    x = torch.rand(4, 3, 8, 8)
    s = as_source(x)
    torch.testing.assert_close(s.tensor(1), x[1], rtol=0, atol=0)
    assert s.image(1).dtype == np.uint8 and s.image(1).shape == (8, 8, 3)
    with pytest.raises(SourceReadError, match=r"images\[0\]"):
        as_source(x * 3).tensor(0)


def test_memmap_identity_is_file_stat_not_pixels(tmp_path):
    imgs = _imgs(5)
    path = tmp_path / "imgs.npy"
    np.save(path, imgs)
    mm = np.load(path, mmap_mode="r")
    s = as_source(mm)
    ident = s.identity()
    assert ident["kind"] == "memmap" and ident["file"] == str(path)
    np.testing.assert_array_equal(s.image(3), imgs[3])
    imgs[0, 0, 0] = 7
    np.save(path, imgs)
    os.utime(path, ns=(1, 1))  # a changed file is a changed identity
    assert as_source(np.load(path, mmap_mode="r")).identity() != ident


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_file_paths_png_jpeg_webp(tmp_path, fmt):
    imgs = _imgs(3, 16, 16)
    paths = _write_pngs(tmp_path, imgs, [0, 0, 1], fmt=fmt)
    s = as_source(paths, labels=[0, 0, 1])
    assert isinstance(s, FileSource) and len(s) == 3
    got = s.image(1)
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    if fmt != "jpeg":  # lossless formats give the pixels back
        np.testing.assert_array_equal(got, imgs[1])
    assert s.metadata["path"].tolist() == paths
    assert as_source(np.array(paths)).identity() == s.identity()


def test_file_identity_changes_when_a_file_changes(tmp_path):
    imgs = _imgs(2, 8, 8)
    paths = _write_pngs(tmp_path, imgs, [0, 1])
    before = as_source(paths).identity()
    Image.fromarray(imgs[0][::-1]).save(paths[1])
    os.utime(paths[1], ns=(10**9, 10**9))
    assert as_source(paths).identity() != before


def test_imagefolder_uses_samples_and_targets_without_its_transform(tmp_path):
    import torchvision

    imgs = _imgs(6, 12, 12)
    _write_pngs(tmp_path, imgs, [0, 1, 2, 0, 1, 2])
    ds = torchvision.datasets.ImageFolder(str(tmp_path), transform=torchvision.transforms.ToTensor())
    s = as_source(ds)
    assert isinstance(s, FolderDatasetSource)
    assert s.labels.tolist() == list(ds.targets) and s.class_names == ["class0", "class1", "class2"]
    i = next(k for k, (p, _) in enumerate(ds.samples) if p.endswith("004.png"))
    np.testing.assert_array_equal(s.image(i), imgs[4])
    assert s.metadata["class_name"][i] == "class1"
    d = as_source(str(tmp_path))  # a directory with class folders reads as an ImageFolder
    assert isinstance(d, FolderDatasetSource) and d.identity() == s.identity()


def test_folder_of_files_without_classes(tmp_path):
    imgs = _imgs(3, 8, 8)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    s = as_source(tmp_path)
    assert isinstance(s, FileSource) and len(s) == 3 and s.labels is None
    np.testing.assert_array_equal(s.image(2), imgs[2])


class _TupleDataset(torch.utils.data.Dataset):
    def __init__(self, x, kind):
        self.x, self.kind = x, kind
        self.targets = list(range(len(x)))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if self.kind == "tensor":
            return torch.from_numpy(self.x[i]).permute(2, 0, 1).float() / 255, self.targets[i]
        if self.kind == "pil":
            return Image.fromarray(self.x[i]), self.targets[i]
        return self.x[i]


@pytest.mark.parametrize("kind", ["tensor", "pil", "array"])
def test_torch_dataset_items_image_or_tuple(kind):
    imgs = _imgs(5)
    s = as_source(_TupleDataset(imgs, kind))
    assert isinstance(s, TorchDatasetSource)
    np.testing.assert_array_equal(s.image(3), imgs[3])
    assert s.labels.tolist() == [0, 1, 2, 3, 4]
    ident = s.identity()
    assert ident["kind"] == "torch" and "sample" in ident
    changed = imgs.copy()
    changed[4] = 0  # index 4 is in the identity's sample (first and last always are)
    assert as_source(_TupleDataset(changed, kind)).identity() != ident
    assert as_source(_TupleDataset(imgs, kind), identity="v2").identity() == {"kind": "user", "id": "v2"}


def test_torch_dataset_hash_contents_sees_every_image():
    imgs = _imgs(40)
    a = as_source(_TupleDataset(imgs, "array"), hash_contents=True).identity()
    changed = imgs.copy()
    changed[7, 0, 0, 0] ^= 1  # not one of the 16 sampled indices of the cheap identity
    assert as_source(_TupleDataset(changed, "array"), hash_contents=True).identity() != a
    assert as_source(_TupleDataset(changed, "array")).identity() == as_source(_TupleDataset(imgs, "array")).identity()


def test_hugging_face_dataset_with_image_column():
    import datasets  # in the test extra: a missing package fails, it does not skip

    imgs = _imgs(4, 10, 10)
    ds = datasets.Dataset.from_dict(
        {"img": [Image.fromarray(im) for im in imgs], "label": [1, 0, 1, 0], "note": list("abcd")},
        features=datasets.Features(
            {"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"]), "note": datasets.Value("string")}
        ),
    )
    s = as_source(ds)
    assert isinstance(s, HFDatasetSource) and s.image_column == "img" and s.class_names == ["a", "b"]
    np.testing.assert_array_equal(s.image(2), imgs[2])
    assert s.labels.tolist() == [1, 0, 1, 0]
    assert s.metadata["note"].tolist() == list("abcd")
    assert s.identity()["fingerprint"] == ds._fingerprint
    assert as_source(ds.select([0, 1])).identity() != s.identity()


def test_webdataset_tar_shards_random_access(tmp_path):
    import webdataset as wds  # in the test extra

    imgs = _imgs(7, 10, 10)
    for k in range(2):
        with wds.TarWriter(str(tmp_path / f"shard-{k:03d}.tar")) as w:
            for i in range(k * 4, min(k * 4 + 4, 7)):
                w.write({"__key__": f"s{i:04d}", "png": Image.fromarray(imgs[i]), "cls": i % 3})
    s = as_source(str(tmp_path / "shard-{000..001}.tar"))
    assert isinstance(s, TarShardSource) and len(s) == 7
    for i in (6, 0, 3):  # any order
        np.testing.assert_array_equal(s.image(i), imgs[i])
    assert s.labels.tolist() == [i % 3 for i in range(7)]
    assert "shard-001.tar:s0005.png" in s.describe(5)
    import pickle

    again = pickle.loads(pickle.dumps(s))  # crosses into DataLoader workers
    np.testing.assert_array_equal(again.image(5), imgs[5])


def test_corrupt_tar_member_names_member_and_index(tmp_path):
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in [("a.png", b"not a png"), ("a.cls", b"1")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            import io

            tf.addfile(info, io.BytesIO(data))
    s = as_source(path)
    with pytest.raises(SourceReadError, match=r"images\[0\] \(.*bad.tar:a.png\)"):
        s.image(0)


def test_world_split_source(tiny_world):
    split = tiny_world["val"]
    s = as_source(split)
    assert isinstance(s, WorldSplitSource) and len(s) == len(split)
    np.testing.assert_array_equal(s.image(5), split.images[5])
    np.testing.assert_array_equal(s.labels, split.labels)
    assert "shape" in s.metadata.columns and s.identity()["split"] == "val"
    assert isinstance(as_source(split.dataset()), WorldSplitSource)


def test_unreadable_file_error_names_file_and_index(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(_imgs(1)[0]).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    s = as_source([good, bad, tmp_path / "gone.png"])
    with pytest.raises(SourceReadError, match=r"images\[1\] \(.*bad.png\)") as info:
        s.image(1)
    assert info.value.index == 1 and info.value.item.endswith("bad.png")
    with pytest.raises(SourceReadError, match=r"images\[2\] \(.*gone.png\): cannot read the image: no such file"):
        s.image(2)


def test_unsupported_input_names_the_type():
    with pytest.raises(TypeError, match="images: cannot make an image source from builtins.dict"):
        as_source({"a": 1})
    with pytest.raises(ValueError, match="neither an image file"):
        as_source("/no/such/thing")


@pytest.fixture(scope="module")
def tiny_world():
    import failwidgets as fw

    return fw.make_world(fw.WorldConfig.demo(n_train=12, n_val=24, n_test=12, n_pool=12))
