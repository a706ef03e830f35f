"""`python tests/browser/serve.py run streamlit_app.py …`: `streamlit …` with fal_client's
upload endpoints pointed at the fake fal server (FAKE_FAL_URL).

fal_client reads its queue hosts from the environment, which the tests set, but has its
upload hosts as constants; this process sets them as tests/conftest.py does in its own.
"""

from __future__ import annotations

import os
import sys

import fal_client.client
from streamlit.web import cli

if __name__ == "__main__":
    fal_client.client.REST_URL = fal_client.client.CDN_URL = os.environ["FAKE_FAL_URL"]
    sys.exit(cli.main())
