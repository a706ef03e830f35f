"""LoRA Studio as `streamlit run streamlit_app.py` starts it (Community Cloud's command, the
replicas' and the tests'): Streamlit's own server, running `router.py` for every visitor.

Streamlit finds `app` here and serves it (`st.App`) with everything a plain script gets:
its flags, `.streamlit/config.toml`, secrets, login. It adds two middlewares
(`ui/server.py`): a page opened by its own link reaches the server 100 ms sooner, and
browsers keep stored images instead of asking for them again. Nothing else of the app is
imported here: Streamlit runs `router.py` for each visit, where pages and links are built.
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from ui.server import PagesFindTheServer, StoredImagesKept

app = st.App("router.py", middleware=[Middleware(PagesFindTheServer), Middleware(StoredImagesKept)])
