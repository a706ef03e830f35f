"""Blind A/B evaluation: arenas made from sweeps (`arenas`), one vote per voter per pair
(`voting`), and Bradley–Terry ratings with their intervals (`ratings`).

An arena's pairs are two images of the same prompt and seed from two arms (a LoRA, or the
base model, at its settings). Voters see pair ids and anonymised image bytes only; an
arm's name reaches a voter's page only after the vote, as its reveal.
"""
