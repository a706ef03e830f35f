"""The arena and leaderboard pages, as AppTest renders them: blind pairs, votes, ratings."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from sqlalchemy import select

from lora_core.arena import arenas
from lora_core.data.db import session_scope
from lora_core.data.models import Arena, ArenaVote, GeneratedImage
from lora_core.generation.recipe import NO_LORA
from lora_core.settings import Settings
from lora_core.storage import build_store
from tests.conftest import open_with_query
from tests.support.arenas import Cell, finished_sweep

ARENA = "app_pages/arena.py"
LEADERBOARD = "app_pages/leaderboard.py"


def stored_picture(app_env, name: str, color: str) -> str:
    """A picture in the app's own media folder: its URL."""
    store = build_store(Settings())  # the app's own, from the environment app_env set
    path = Path(app_env["MEDIA_DIR"]).parent / f"{name}.png"
    Image.new("RGB", (64, 64), color).save(path)
    return store.save(f"arena/{name}.png", path.read_bytes(), content_type="image/png")


def make_arena(app_env, engine, add_lora) -> str:
    add_lora("neon-id", trigger_word="neonword"), add_lora("ink-id", trigger_word="inkword")
    url = stored_picture(app_env, "picture", "teal")
    cells = [Cell(lora, prompt="a <b>lighthouse</b>") for lora in (NO_LORA, "neon-id", "ink-id")]
    sweep_id, _ = finished_sweep(engine, cells, image_url=url)
    return arenas.create_arena(engine=engine, user="ann", name="Blind test", sweep_ids=[sweep_id])


def shown_images(at) -> list:
    """Every picture `st.image` drew: its URL, alt text and caption."""
    return [picture for image in at.get("image") for picture in image.proto.imgs]


def page_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [t.value for t in at.title] + [h.value for h in at.header]
    return "\n".join(parts)


def test_a_pair_names_no_arm_until_the_vote(open_app, app_env, engine, add_lora):
    arena_id = make_arena(app_env, engine, add_lora)

    at = open_with_query(open_app, ARENA, id=arena_id)

    assert not at.exception
    text = page_text(at)
    for secret in ("neon", "ink", "neon-id", "ink-id", "no LoRA", "scale"):
        assert secret not in text
    assert "lighthouse" in text
    assert "Pair 1 of 3" in at.get("progress")[0].proto.text
    images = shown_images(at)
    assert [image.caption for image in images] == ["Left", "Right"]
    for image in images:
        assert image.url.startswith("/mock/media/") and "arena" not in image.url
        assert image.alt.endswith("image for the prompt: a <b>lighthouse</b>")
        assert not any(secret in image.alt + image.url for secret in ("neon", "ink", NO_LORA))
    assert [button.key for button in at.button][:5] == [
        "vote_left",
        "vote_right",
        "vote_tie",
        "vote_both_bad",
        "vote_skip",
    ]

    at.button(key="vote_left").click().run()

    assert not at.exception
    reveal = at.info[0].value
    assert "Your vote counted (left better)" in reveal
    assert "neonword" in reveal or "inkword" in reveal or "no LoRA" in reveal
    assert "Pair 2 of 3" in at.get("progress")[0].proto.text
    with session_scope(engine) as session:
        votes = session.scalars(select(ArenaVote)).all()
    assert [(vote.user, vote.arena_id) for vote in votes] == [("guest", arena_id)]


def test_after_every_pair_the_voter_is_thanked_and_the_leaderboard_ranks(
    open_app, app_env, engine, add_lora
):
    arena_id = make_arena(app_env, engine, add_lora)
    at = open_with_query(open_app, ARENA, id=arena_id)
    for _ in range(3):
        at.button(key="vote_tie").click().run()

    assert "You have voted on every pair" in at.success[0].value

    board = open_with_query(open_app, LEADERBOARD, id=arena_id)
    assert not board.exception
    standings = board.dataframe[0].value  # the first table: the standings
    assert sorted(standings["arm"]) == [
        "inkword · scale 1",
        "neonword · scale 1",
        "no LoRA (base model)",
    ]
    assert list(standings["ties"]) == [2, 2, 2] and set(standings["note"]) == {"few votes"}
    assert [metric.value for metric in board.metric][:2] == ["3", "1"]
    assert [button.label for button in board.get("download_button")] == [
        "Votes (CSV)",
        "Votes (Parquet)",
    ]


def test_a_skip_moves_on_and_an_unknown_arena_is_a_message(open_app, app_env, engine, add_lora):
    arena_id = make_arena(app_env, engine, add_lora)
    at = open_with_query(open_app, ARENA, id=arena_id)
    first = shown_images(at)

    at.button(key="vote_skip").click().run()

    assert "Pair 1 of 3" in at.get("progress")[0].proto.text  # nothing voted
    missing = open_with_query(open_app, ARENA, id="nope")
    assert "Arena not found" in missing.error[0].value
    board = open_with_query(open_app, LEADERBOARD, id="nope")
    assert "Arena not found" in board.error[0].value
    assert first is not None


def test_the_index_lists_arenas_and_makes_one_from_a_sweep(open_app, app_env, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    sweep_id, _ = finished_sweep(engine, [Cell(NO_LORA), Cell("neon-id")])
    lonely, _ = finished_sweep(engine, [Cell("neon-id", prompt="alone")])

    at = open_with_query(open_app, ARENA)
    assert "No arena yet" in at.info[0].value
    at.text_input[0].set_value("  ")
    at.multiselect[0].set_value([lonely])
    at.button[0].click().run()  # the form's submit
    assert "Give the arena a name" in at.warning[0].value

    at.text_input[0].set_value("Neon against base")
    at.multiselect[0].set_value([sweep_id])
    at.button[0].click().run()

    assert not at.exception
    with session_scope(engine) as session:
        [arena] = session.scalars(select(Arena)).all()
    assert arena.name == "Neon against base" and arena.user == "guest"


def test_the_leaderboard_without_votes_says_so(open_app, app_env, engine, add_lora):
    board = open_with_query(open_app, LEADERBOARD)

    assert not board.exception
    assert "No votes yet" in board.info[0].value


def test_a_finished_sweep_becomes_an_arena_in_one_click(open_app, app_env, engine, add_lora):
    add_lora("neon-id", trigger_word="neonword")
    sweep_id, _ = finished_sweep(engine, [Cell(NO_LORA), Cell("neon-id")])
    at = open_with_query(open_app, "app_pages/lab.py", sweep=sweep_id)

    at.button(key="sweep_arena").click().run()

    assert not at.exception
    with session_scope(engine) as session:
        [arena] = session.scalars(select(Arena)).all()
    assert arena.name.startswith("“a lighthouse” · ")
    assert "neonword" not in arena.name  # the arena's page names no arm


def test_a_loras_page_shows_its_standing_once_it_was_voted_on(open_app, app_env, engine, add_lora):
    arena_id = make_arena(app_env, engine, add_lora)
    before = open_with_query(open_app, "app_pages/lora.py", id="neon-id")
    assert not [c for c in before.caption if "Blind arenas" in c.value]
    at = open_with_query(open_app, ARENA, id=arena_id)
    for _ in range(3):
        at.button(key="vote_tie").click().run()
    from ui import standing

    standing.every_arena.clear()  # at most a minute old: as a minute later

    page = open_with_query(open_app, "app_pages/lora.py", id="neon-id")

    assert not page.exception
    [line] = [c.value for c in page.caption if "Blind arenas" in c.value]
    assert "**neonword · scale 1** rated 1000" in line
    assert "of 3 · 0 wins, 2 ties, 0 losses · in 1 arena · few votes" in line


def test_an_image_that_cannot_be_read_leaves_the_votes_and_skip(
    open_app, app_env, engine, add_lora
):
    arena_id = make_arena(app_env, engine, add_lora)
    with session_scope(engine) as session:
        for image in session.scalars(select(GeneratedImage)):
            image.image_url = "app/static/media/gone/missing.png"
        session.commit()

    at = open_with_query(open_app, ARENA, id=arena_id)

    assert not at.exception
    assert [w.value for w in at.warning] == [
        "The left image cannot be shown right now; skip this pair.",
        "The right image cannot be shown right now; skip this pair.",
    ]
    assert {"vote_skip", "vote_left"} <= {button.key for button in at.button}


def test_the_owner_recommends_the_best_rated_scale_from_the_leaderboard(
    open_app, app_env, engine, add_lora
):
    from sqlalchemy import update

    from lora_core.data.models import LoraScorecard, LoraTraining
    from tests.arena.test_ratings import vote_for

    add_lora("neon-id", trigger_word="neonword")
    with session_scope(engine) as session:  # the app's visitor, "guest", owns it
        session.execute(update(LoraTraining).values(user="guest"))
        session.commit()
    url = stored_picture(app_env, "picture", "teal")
    cells = [Cell("neon-id", scale, prompt=f"p{n}") for n in range(3) for scale in (0.6, 1.2)]
    sweep_id, _ = finished_sweep(engine, cells, image_url=url)
    arena_id = arenas.create_arena(engine=engine, user="ann", name="Scales", sweep_ids=[sweep_id])
    vote_for(engine, arena_id, "bob", "neonword · scale 1.2", pairs=3)

    at = open_with_query(open_app, LEADERBOARD, id=arena_id)
    button = at.button(key="recommend_best_neon-id")
    assert button.label == "Recommend scale 1.2 for neonword (rated best here)"
    button.click().run()

    assert not at.exception
    with session_scope(engine) as session:
        assert session.get(LoraScorecard, "neon-id").recommended_scale == 1.2
