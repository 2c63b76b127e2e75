"""`hookops custody status|verify|restore`: the custody copy seen from the operator's terminal. Registered on
the `hookops` group (hookops/cli.py). The work is handlers/actions/custody/objects.py's, which the audit shares;
everything read from storage is shown through printable()."""
from __future__ import annotations

from pathlib import Path

import click

from hookops.common import fail, printable


def _root():
    from handlers.clients import custody_config as config
    return config.storage_root()


@click.group()
def custody():
    """The custody copy: an OCFL object per asset in CUSTODY_CONTAINER (docs/actions.md, "custody")."""


@custody.command("status")
@click.argument("ref", required=False)
def status(ref):
    """Coverage and the last audits; with REF, that asset's object: its versions and when each was made."""
    from handlers.actions.custody import objects
    from handlers.clients import custody_tally
    from handlers.core.ocfl import PREFIXES
    root = _root()
    if ref:
        inv, problem = objects.load(root, objects.prefix_of(ref))
        if inv is None:
            fail(f"{ref}: no usable custody object ({problem})")
        click.echo(f"{printable(ref)}: {printable(inv['id'])} at {objects.prefix_of(ref)}, head {printable(inv['head'])}")
        for name, version in sorted(inv["versions"].items(), key=lambda v: int(v[0][1:])):
            files = sum(len(p) for p in version["state"].values())
            click.echo(f"  {name}  {printable(version.get('created', ''))}  {files} files  "
                       f"{printable(version.get('message', ''))}")
        return
    cover, reports = custody_tally.status(audits=3)
    if cover is None:
        click.echo("objects: none counted yet (the action counts the objects it makes; the audit the others)")
    else:
        click.echo(f"objects: {cover.total} (verified {cover.verified}: ok at their last audit {cover.ok}, "
                   f"written since {cover.written}; mismatched {cover.mismatched}, missing {cover.missing})")
        click.echo(f"  counted in {cover.prefixes} of {PREFIXES} prefixes; " + (
            f"oldest prefix audit {printable(cover.oldest)}" if cover.oldest else "some not audited yet"))
    if not reports:
        click.echo("last audit: none yet")
    for report in reports:
        click.echo(f"{printable(report.get('at', ''))}  {printable(custody_tally.text(report))}")
        if report.get("failures"):
            click.echo(f"  failures: {printable(report['failures'])}")


@custody.command("verify")
@click.argument("ref")
@click.option("--inventory-only", is_flag=True,
              help="Do not ask Preservica: compare the stored files with the inventory alone.")
def verify(ref, inventory_only):
    """Read asset REF's object back now: every stored file's digests against its inventory and, as the audit
    does, the head's files against Preservica's fixity as it is now (a few requests; the inventory alone without
    Preservica settings, for an asset Preservica no longer has, or with --inventory-only). Exit 1 on any
    difference or missing file."""
    from handlers import custody_audit
    from handlers.actions.custody import objects
    from handlers.clients import custody_config as config
    from handlers.core.errors import SafeError
    current = None if inventory_only else custody_audit.preservica_now(custody_audit.request_budget())
    try:
        check = objects.check(_root(), objects.prefix_of(ref), config.object_id(ref), current=current)
    except SafeError as exc:   # Preservica (or storage) unreachable: say so, not a traceback
        fail(f"{ref}: not verified: {exc} (--inventory-only checks the copy without Preservica)")
    against = "its inventory and Preservica's fixity now" if check.compared else "its inventory"
    click.echo(f"{printable(ref)}: {check.state}, head {printable(check.head or '-')}, {check.files} files read "
               f"against {against}")
    if check.problem:
        click.echo(f"  inventory: {printable(check.problem)}")
    for path in check.mismatched:
        click.echo(f"  mismatched: {printable(path)}")
    for path in check.not_preservicas:
        click.echo(f"  not Preservica's fixity now: {printable(path)}")
    for path in check.missing:
        click.echo(f"  missing: {printable(path)}")
    if check.state != "ok":
        raise SystemExit(1)


@custody.command("restore")
@click.argument("ref")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the files to (created; files already there are replaced).")
@click.option("--version", "version", default=None, help="OCFL version to restore, e.g. v1. Default: the newest.")
def restore(ref, to, version):
    """Write the files and metadata of one version of asset REF's object under --to, each checked against
    the inventory's sha512 before it takes its name. Paths in the inventory that would leave --to are refused."""
    from handlers.actions.custody import objects
    to.mkdir(parents=True, exist_ok=True)
    try:
        got, written = objects.restore(_root(), ref, to, version)
    except objects.RestoreError as exc:
        fail(str(exc))
    for path in written:
        click.echo(f"  {printable(path)}")
    click.echo(f"restored {printable(got)} of {printable(ref)}: {len(written)} files in {printable(str(to))}")
