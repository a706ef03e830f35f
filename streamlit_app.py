"""LoRA Studio as `streamlit run streamlit_app.py` starts it (Community Cloud's command, the
replicas' and the tests'): Streamlit's own server, running `router.py` for every visitor.

Streamlit finds `app` here and serves it (`st.App`) with everything a plain script gets:
its flags, `.streamlit/config.toml`, secrets, login. The one addition is a middleware,
`ui.server.PagesFindTheServer`: a page opened by its own link reaches the server 100 ms
sooner. Nothing else of the app is imported here: `router.py` is imported by Streamlit for
each run, where its pages and links are built.
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from ui.server import PagesFindTheServer

app = st.App("router.py", middleware=[Middleware(PagesFindTheServer)])
