"""Another app process, for the tests of what happens when one dies mid-job: it runs a few
lines of Python against the test's database and the fake fal, with short leases, and the
test kills it (or it ends itself) at the moment the test is about."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta

from lora_core.data.db import DatabaseTarget
from lora_core.data.leases import LeaseTerms
from tests.conftest import APP_ROOT, TEST_FAL_KEY

# A dead process's row is taken over seconds after its last renewal.
SHORT_TERMS = LeaseTerms(duration=timedelta(seconds=2), renew_every=timedelta(seconds=0.25))


def start_worker(database: DatabaseTarget, body: str, *, terms: LeaseTerms = SHORT_TERMS):
    """A process running `body` with these names ready: `engine` (the test's database),
    `generator` (fal's, through the real fal_client against the fake), `policy` (8 a day),
    `terms` (short leases) and `timedelta`; fal_client's uploads go to the fake too."""
    prologue = textwrap.dedent(
        f"""
        import os
        from datetime import timedelta
        from lora_core.data import leases
        from lora_core.data.db import DatabaseTarget, create_db_engine
        from lora_core.fal.generator import FalGenerator
        from lora_core.generation.quota import QuotaPolicy
        from tests.support.fakefal import point_fal_uploads_at

        point_fal_uploads_at("https://" + os.environ["FAL_RUN_HOST"])
        engine = create_db_engine(
            DatabaseTarget({database.url!r}, auth_token={database.auth_token!r})
        )
        generator = FalGenerator(key={TEST_FAL_KEY!r}, timeout_seconds=60, poll_interval=0.05)
        policy = QuotaPolicy(limit=8, window=timedelta(hours=24))
        terms = leases.LeaseTerms(
            duration=timedelta(seconds={terms.duration.total_seconds()}),
            renew_every=timedelta(seconds={terms.renew_every.total_seconds()}),
        )
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", prologue + textwrap.dedent(body)],
        cwd=APP_ROOT,
        env=dict(os.environ),
    )
