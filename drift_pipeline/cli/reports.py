"""`drift-pipeline reports serve`: the read-only report server the Dagster UI's report links point at."""

from __future__ import annotations

from typing import Annotated

import typer

from drift_pipeline.cli.common import console

group = typer.Typer(help="Drift reports: serve their HTML pages to the links in the Dagster UI.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="reports")


@group.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="port to listen on (the default report links point at 3080)")] = 3080,
    host: Annotated[str, typer.Option(help="address to bind (loopback unless --allow-remote)")] = "127.0.0.1",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="bind a non-loopback address: only behind an authenticating proxy")
    ] = False,
) -> None:
    """Serve report pages (reports/**.html) from the object store, read-only, until Ctrl-C.

    Set DRIFT_PIPELINE_REPORT_BASE_URL to this server's URL when it is not http://127.0.0.1:3080."""
    from drift_pipeline.persistence.objects import ObjectStore
    from drift_pipeline.persistence.report_server import ReportServer

    server = ReportServer(ObjectStore.from_settings(), host, port, allow_remote=allow_remote)
    console.print(f"serving report pages at {server.url}/reports/ (Ctrl-C to stop)", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
