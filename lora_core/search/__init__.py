"""Finding any image: words of prompts indexed, searches across every LoRA, saved searches.

- `words`: how a prompt and a search's text become words (NFKC, case-folded, Unicode
  letters and digits; adjacent pairs for quoted phrases).
- `indexing`: the words index kept: at once for a stored batch, by the background sweep for
  the rest (the original app's images, those stored before it existed).
- `query`: a search as the link holds it (`SearchQuery`), and its page of images and count
  in SQL, driven by the index when it names words.
- `saved`: named searches shared with the team, and what is new in each since one looked.
"""
