"""``avrestore serve``: a local web page to restore a video, compare, play and download it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 127.0.0.1 keeps the page on this computer."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8000,
    max_seconds: Annotated[
        float, typer.Option(min=1, help="Longest video the page takes, in seconds.")
    ] = 120.0,
    weights_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of checkpoints to offer (default: the shipped weights/)."),
    ] = None,
    leaderboard: Annotated[
        Path | None,
        typer.Option(
            help="Results cache whose figures are shown beside the models "
            "(default: the checkout's docs/leaderboard.json)."
        ),
    ] = None,
) -> None:
    """Serve a page on which to upload a video (or pick the sample clip), choose the damage
    and the model (with its leaderboard figures), follow the progress, then compare frames
    before and after, play the restored video with its audio and download it. One restoration
    runs at a time. Uploads and results live in a temporary folder that is removed when the
    server stops (Ctrl-C)."""
    # Imported here: `avrestore --help` must not load the server.
    from avrestore.web.server import PageOptions, is_local, page_server

    options = PageOptions(weights_dir, leaderboard, max_seconds)
    with page_server(host, port, options) as server:
        reach = (
            "this computer only"
            if is_local(host)
            else "ANY machine that can reach this one: anyone there can upload and restore"
        )
        typer.echo(f"avrestore serve: open {server.url} (listening on {host}: {reach})")
        typer.echo(
            f"avrestore serve: uploads and results in {server.root}; Ctrl-C stops and removes it"
        )
        try:
            server.serve_forever()
        finally:
            typer.echo(f"avrestore serve: stopped; removing {server.root}", err=True)
