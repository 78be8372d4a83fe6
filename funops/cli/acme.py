"""`funops acme account init`: the ACME account of each issuer in funops.yaml (key and registration)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .options import RepoOpt, load_inventory
from .output import console, fail, reported

acme_app = typer.Typer(
    rich_markup_mode="markdown", help="ACME certificates: the accounts at the issuers funops.yaml names."
)
account_app = typer.Typer(
    rich_markup_mode="markdown", help="The ACME account funops orders certificates with, per issuer."
)
acme_app.add_typer(account_app, name="account")


@account_app.command("init")
def account_init(
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="One issuer of funops.yaml acme.issuers (default: all).")
    ] = None,
    repo: RepoOpt = Path("."),
) -> None:
    """Make the issuer's account key when there is none (.funops/acme/<issuer>.key, 0600, keep it out
    of git; where CI runs, the variable acme.issuers.<issuer>.accountKeyFromEnv holds it instead) and
    register it with the CA (agreeing to its terms of service; with EAB when configured). Safe to
    repeat: an existing account is found, not registered twice."""
    from ..acme import AcmeError, account

    project = load_inventory(repo, None)
    names = [issuer] if issuer else sorted(project.settings.acme.issuers)
    if not names:
        fail("funops.yaml has no acme.issuers: add one (see README, ACME issuers and accounts)")
    for name in names:
        with reported():
            try:
                done = account.init(project, name)
            except AcmeError as exc:
                fail(str(exc))
        key = f"{done.key_source} (made now, 0600, keep it out of git)" if done.key_made else done.key_source
        state = "registered" if done.created else "exists"
        console().print(f"issuer {escape(name)}: account {state}: {escape(done.uri)}; key {escape(key)}")
