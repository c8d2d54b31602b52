"""`searchlab dashboard URL`: optuna-dashboard on a storage named by its URL, as `optuna-dashboard URL` takes it, with
searchlab's checks (a file storage must exist, the password never printed, 127.0.0.1 by default)."""
from __future__ import annotations

from searchlab.dashboard import free_port, url, warn_if_reachable
from searchlab.engine.rundir import storage_file
from searchlab.engine.storage import open_storage
from searchlab.errors import SearchlabError, shown_url


def serve_storage(storage_url: str, host: str, port: int) -> None:
    """optuna-dashboard on a storage named by its URL: no run folder, so no artifacts. A file storage must exist:
    opening a mistyped sqlite:/// or journal:// path would create an empty database there."""
    from optuna_dashboard import run_server

    file = storage_file(storage_url)
    if file is not None and not file.is_file():
        raise SearchlabError(f"storage '{shown_url(storage_url)}': no such file, {file.absolute()}. Fix: name the "
                             "database file of the run (its run folder's study.db), or pass the run folder")
    storage = open_storage(storage_url, reading=True)
    port = free_port(host, port)
    warn_if_reachable(host, "its studies (notes, trial states)")
    print(f"optuna-dashboard for storage '{shown_url(storage_url)}' at {url(host, port)}  (Ctrl-C to stop)")
    run_server(storage, host=host, port=port)
