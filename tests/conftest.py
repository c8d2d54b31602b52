"""Shared pytest fixtures."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from postgres_server import postgres_url


@pytest.fixture(scope="session", autouse=True)
def image_cache_of_the_session(tmp_path_factory):
    """Decoded folder/CSV images are cached in a folder of this session, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEARCHLAB_CACHE", str(tmp_path_factory.mktemp("searchlab-cache")))
        yield


@pytest.fixture(autouse=True)
def import_path_of_the_test():
    """Each load_study appends its study's folder to sys.path (plug-ins beside the study): restored after each
    test, with the modules imported from those folders, so one test's `fake_task.py` is not another's."""
    before = list(sys.path)
    yield
    added = [folder for folder in sys.path if folder not in before]
    if not added:
        return
    sys.path[:] = before
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if any(file.startswith(folder + os.sep) for folder in added):
            del sys.modules[name]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """../shared/data next to the repository: real data sets, read in place, never copied into the repo."""
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def breastmnist_root(shared_data_dir: Path) -> Path:
    """The folder holding breastmnist.npz (a medmnist root); fails loudly if the file is not there."""
    assert (shared_data_dir / "breastmnist.npz").is_file(), f"missing {shared_data_dir / 'breastmnist.npz'}"
    return shared_data_dir


@pytest.fixture()
def write_study(tmp_path: Path, breastmnist_root: Path):
    """Write a study YAML into tmp_path; `data` defaults to the real BreastMNIST, run_dir to tmp_path/run."""

    def write(text: str, name: str = "study.yaml", with_defaults: bool = True) -> Path:
        body = text
        if with_defaults:
            if "\ndata:" not in "\n" + text:
                body += f"\ndata: {{source: medmnist, name: breastmnist, root: '{breastmnist_root}', download: false}}\n"
            if "\nrun_dir:" not in "\n" + text:
                body += f"\nrun_dir: '{tmp_path / 'run'}'\n"
        path = tmp_path / name
        path.write_text(body)
        return path

    return write


@pytest.fixture(scope="module")
def postgres():
    """A postgresql:// URL of a throwaway server on 127.0.0.1, one per test module (tests/postgres_server.py)."""
    with postgres_url() as url:
        if url is None:
            pytest.skip("no PostgreSQL server programs on this machine (Debian: apt-get install postgresql)")
        yield url


@pytest.fixture(scope="module")
def one_torch_thread():
    """A module of small-network tests on one core: a benchmark or another test may share the machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def breast(breastmnist_root: Path):
    """BreastMNIST's train and val splits, loaded once for the session."""
    from searchlab.config.schema import MedMNISTData
    from searchlab.data import load_dataset

    cfg = MedMNISTData(source="medmnist", name="breastmnist", root=str(breastmnist_root), download=False)
    return load_dataset(cfg, splits=("train", "val"), seed=0)


@pytest.fixture(scope="session")
def extractor_run(tmp_path_factory, breast) -> Path:
    """A run folder holding the purpose-trained MedFID feature network, trained once for the whole session: here,
    not in a test module, so every module that imports it shares one training (each import was one more)."""
    from searchlab.gan.features import feature_network

    run = tmp_path_factory.mktemp("medfid")
    feature_network(None, run, run, breast, seed=0)
    return run


# ---- runs and exports read by several test modules: built once a session, not once per importing module (a
# module-scoped fixture imported into another module is built again there). Tests that write into one work on a
# copy of it (shutil.copytree into tmp_path); the builders live beside the tests that say what they hold.

@pytest.fixture(scope="session")
def gan_export(tmp_path_factory) -> Path:
    """A folder of noise images, a MedFID feature network exported from a classifier of it, and a GAN study of
    it exported as gan_export/ (test_synthetic_leak.py, test_sample.py)."""
    from test_synthetic_leak import build_gan_export

    return build_gan_export(tmp_path_factory.mktemp("leak"))


@pytest.fixture(scope="session")
def source(tmp_path_factory) -> Path:
    """A run of a small image folder and its after-run export, run/best (test_model_save_guards.py and the
    model.save and --out tests that import from it)."""
    from test_model_save_guards import build_source

    return build_source(tmp_path_factory.mktemp("save_guards"))


@pytest.fixture(scope="session")
def exported(tmp_path_factory, breastmnist_root: Path):
    """(folder, export config): a run on BreastMNIST in folder/run, its best trial exported to folder/best
    (test_export.py, test_cli_streams.py)."""
    from test_export import build_exported

    return build_exported(tmp_path_factory.mktemp("export"), breastmnist_root)
