"""Released migrations never change: the SQL each alembic revision applies is frozen in
sql/revisions/<revision>/, and this manifest pins it. A change to the schema is a new revision
(with its own frozen copy and a new line here), never an edit of a released one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from scheduler_admin.schema import _data_dir

REVISIONS = _data_dir("sql") / "revisions"

# sha256 of every file of every released revision
RELEASED = {
    "0001/postgres/00_extension.sql": "aaf5f104507aecbb077ac6fb415e7e912952899c79085ee36d12c644d7011d75",
    "0001/postgres/10_schema.sql": "a2ab12126016b58b72551e2876543ae522237c82d021e311982ce458d7ff41ff",
    "0001/postgres/20_functions.sql": "6177d6631946dcd6c9a68cf78aa4c318c1be4a8a91c81392c91c8d028d3578b9",
    "0001/postgres/30_triggers.sql": "3d14dec12ab120eb49a0e35604bb447d9cba401409e2b9048a7ac4618fead86b",
    "0001/postgres/40_admin.sql": "54612396881cb8788af60cfd2ccdd91f62801d52a6fdbf37ea654cf12beeabfc",
    "0001/postgres/50_grants.sql": "1b4279550d2b287c66b1e95d73dd8c9b46dd9c029ee98d7623a7b7c61600e276",
    "0001/postgres/60_jobs.sql": "4645c35caa62e444128b55354c75384d1ba074873e401038d3aa4d519272c99b",
    "0001/postgres/teardown.sql": "ff7ce536d7c306dfc593360a1c5912901eacf67365c8103c64df5cacddffb14c",
    "0001/sqlite/10_schema.sql": "2633f21efa593b109bda2c1e0fbdf4f9eb8fff5fdaf1a9e51565b7710e110060",
    "0001/sqlite/20_views.sql": "8b6fd63e0e199c466f344fd37018991d81b4118716048b015e14c4f1d8c9e6d9",
    "0001/sqlite/30_triggers.sql": "f85a9850c936bb3df128bb9fe61c88844000fe100f992d34dca5de2a8deaa4bc",
    "0001/sqlite/60_jobs.sql": "9e3a9fb39b9e1ed8e57cbe51852ea25ba4c9d791efd2638fa656487404cb58ac",
    "0001/sqlite/teardown.sql": "7eb10cee7d097c95f0b6f084f7fb1840d876baf245bf081d172fc64d3d394b2e",
    "0002/postgres/10_schema.sql": "8ac2e14a89e6a0efba3e20ee20f53f8fd5e36ab1cc1916d761f01fd173f6078d",
    "0002/postgres/15_owner.sql": "83d64be176e2b130280a5186fccfaec8975f5ed7f2faf8e12aee29e8d13040af",
    "0002/postgres/20_functions.sql": "123c1911c4d5bc40b188cd79947acfbdd7f8cb0ac892259633491d7fe3a08d74",
    "0002/postgres/30_triggers.sql": "69552b393d236d6be1f1a586a187184cf0708f99eff0d95ee5013e10e4964f81",
    "0002/postgres/40_admin.sql": "6c35d991da2a9ed6504d53479253cfe1d664770ebb7bdf5df1250789c21260f9",
    "0002/postgres/50_grants.sql": "436dd3bcd82292a1476f73c3f3e37ec26950d90c0a453fd9171e225bbb4df7c1",
    "0002/postgres/60_jobs.sql": "61888b09df8b897d2243b4a92da745acaccb9ef882a1d48ba75dec9ead2f9b97",
    "0002/postgres/90_reset_role.sql": "b666d5d58140d3f39b7d05a09755c17cf5113180372e4a0bb3f14cd4d44e4e40",
    "0002/postgres/downgrade.sql": "2ca10964d3c496b174b372d83b8886e68dd8f92161e83c66a63286515e9d8dab",
}


def files() -> dict[str, str]:
    return {
        str(p.relative_to(REVISIONS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(REVISIONS.rglob("*.sql"))
    }


def test_every_released_file_is_unchanged() -> None:
    assert files() == RELEASED


@pytest.mark.parametrize("revision", sorted({name.split("/")[0] for name in RELEASED}))
def test_each_revision_has_a_migration_script(revision: str) -> None:
    versions = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    assert list(versions.glob(f"{revision}_*.py")), revision
