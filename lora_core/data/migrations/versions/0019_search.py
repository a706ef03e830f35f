"""Search: a words index of every image's prompt, and saved searches.

`image_words`: each word (and each pair of adjacent words, "red fox") of an image's prompt,
folded (NFKC, case-folded), with the image's time, so that a word's images are read newest
first from one index; `indexed_images` marks the images indexed (the original app's are
indexed by the background sweep). Portable: SQLite and a libSQL server alike, no FTS5.
`saved_searches`: a named search (its link's parameters) shared with the team, and
`saved_search_views`: when each user last looked at one.

Revision ID: 0019_search
Revises: 0018_stacked_loras
"""

from __future__ import annotations

from lora_core.data.migrations.helpers import execute

revision = "0019_search"
down_revision = "0018_stacked_loras"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute(
        """CREATE TABLE IF NOT EXISTS image_words (
          word TEXT NOT NULL,
          image_id TEXT NOT NULL,
          created_at TEXT NOT NULL,
          PRIMARY KEY (word, image_id)
        )""",
        "CREATE INDEX IF NOT EXISTS idx_image_words_word_created "
        "ON image_words (word, created_at, image_id)",
        "CREATE INDEX IF NOT EXISTS idx_image_words_image ON image_words (image_id)",
        """CREATE TABLE IF NOT EXISTS indexed_images (
          image_id TEXT NOT NULL PRIMARY KEY
        )""",
        """CREATE TABLE IF NOT EXISTS saved_searches (
          id TEXT NOT NULL PRIMARY KEY,
          name TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          query TEXT NOT NULL,
          created_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS idx_saved_searches_created ON saved_searches (created_at)",
        """CREATE TABLE IF NOT EXISTS saved_search_views (
          search_id TEXT NOT NULL,
          wallet_address TEXT NOT NULL,
          seen_at TEXT NOT NULL,
          PRIMARY KEY (search_id, wallet_address)
        )""",
    )
