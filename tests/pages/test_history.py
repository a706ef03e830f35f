"""The History page, as AppTest renders it: filters come from the link's query parameters."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from lora_core.data.clock import to_iso
from lora_core.data.db import session_scope
from lora_core.data.models import GeneratedImage, GenerationBatch
from lora_core.generation.service import GenerationKit
from tests.conftest import NOW, open_with_query
from tests.history.test_history import seeded  # noqa: F401 - the shared nine-batch fixture
from tests.support.factories import star
from tests.support.markup import (
    figures,
    readable,
    summary_figures,
    table_column,
    table_headers,
    table_rows,
)

HISTORY = "app_pages/history.py"


def open_history(open_app, **query):
    return open_with_query(open_app, HISTORY, **query)


def open_filters(at):
    """Unfold the filters, as a click on "Filters" does (the page reruns and draws them)."""
    at.session_state["history_filters"] = True
    return at.run()


def open_charts(at, tab: str | None = None):
    """Unfold the charts (and choose a tab), as clicks do: the page reruns and draws them."""
    at.session_state["history_charts"] = True
    if tab:
        at.session_state["history_chart_tab"] = tab
    return at.run()


def metrics(at) -> dict[str, str]:
    return summary_figures(at)


def test_the_page_summarises_and_lists_every_batch(open_app, seeded):  # noqa: F811
    at = open_history(open_app)

    assert not at.exception
    assert metrics(at) == {
        "Batches": "9",
        "Images": "26",
        "Users": "3",
        "LoRAs": "4",
        # b2 failed; b6, pending for two days, was abandoned: the app's start failed it.
        "Failed": "22%",
        "Safety-filtered": "11%",
        "Median time": "40.0 s",
        "Est. spend": "$0.95",  # 26 images of 1024x1024 at $0.035 a megapixel
    }
    rows = table_rows(at)
    assert [row["Prompt"].text for row in rows[:2]] == ["A red Fox in snow", "a blue whale"]
    assert (rows[0]["LoRA"].text, rows[0]["LoRA"].href) == ("alpha", "lora?id=lora-a")
    assert rows[0]["Time (UTC)"].href == "?batch=b1"  # its details, over the page
    assert len(rows) == 9


def test_filters_are_read_from_the_link(open_app, seeded):  # noqa: F811
    at = open_history(open_app, lora=["alpha", "beta"], user="ann", q="RED")

    assert at.multiselect(key="lora").value == ["lora-a", "lora-b"]
    assert at.text_input(key="user").value == "ann"
    assert table_column(at, "Prompt") == ["A red Fox in snow", "red roses 100%"]
    assert metrics(at)["Batches"] == "2"


def test_a_status_filter_from_the_link(open_app, seeded):  # noqa: F811
    at = open_history(open_app, status="safety-filtered")

    assert table_column(at, "Status") == ["safety-filtered"]


def test_unknown_values_in_the_link_are_ignored(open_app, seeded):  # noqa: F811
    at = open_history(open_app, lora="no-such-lora", status="bogus")

    assert not at.exception
    assert metrics(at)["Batches"] == "9"


def test_no_match_says_so(open_app, seeded):  # noqa: F811
    at = open_history(open_app, user="nobody")

    assert not at.exception
    assert at.info[0].value == "No generations match these filters."
    assert not table_rows(at)


def test_an_empty_history_says_how_to_fill_it_without_a_row_of_zeros(open_app):
    at = open_history(open_app)

    assert not at.exception
    assert at.info[0].value.startswith("No generations yet.")
    assert not metrics(at)  # no "0 %" rates for nothing
    assert not table_rows(at)


def test_reuse_prompt_opens_the_loras_page_with_the_prompt(open_app, seeded):  # noqa: F811
    at = open_history(open_app, user="bob", q="lighthouse", batch="b8")  # its row's link

    at.button(key="reuse_prompt").click().run()

    assert not at.exception
    assert at.query_params["id"] == "lora-b"
    assert at.text_area(key="gen_prompt").value == "a lighthouse"


@pytest.mark.parametrize("prompt_count", [1, 3])
def test_my_prompts_fill_the_prompt_box(open_app, add_lora, engine, prompt_count):
    add_lora("mine")
    with session_scope(engine) as session:
        for number in range(prompt_count):
            session.add(
                GenerationBatch(
                    id=f"g{number}",
                    lora_training_id="mine",
                    user="guest",
                    prompt=f"my idea {number}",
                    status="succeeded",
                    images_returned=4,
                    created_at=to_iso(NOW),
                )
            )
        session.commit()
    at = open_app("app_pages/lora.py", id="mine")
    at.button(key="open_generate").click().run()

    at.selectbox(key="gen_my_prompts").select("my idea 0").run()

    assert at.text_area(key="gen_prompt").value == "my idea 0"


def test_a_link_to_a_generation_that_is_not_there_says_so_over_the_table(open_app, seeded):  # noqa: F811
    at = open_history(open_app, batch="b404")

    assert not at.exception
    assert at.warning[0].value.startswith("No generation has this id")
    assert "reuse_prompt" not in [b.key for b in at.button]
    assert len(table_rows(at)) == 9  # the page under it, whole


def test_a_generation_opens_from_its_link_whatever_the_filter(open_app, seeded):  # noqa: F811
    at = open_history(open_app, user="ann", batch="b8")  # bob's: not a row of this view

    assert not at.exception
    assert [c.value for c in at.code] == ["a lighthouse"]
    assert at.button(key="reuse_prompt")


def test_from_after_to_is_explained(open_app, seeded):  # noqa: F811
    at = open_history(open_app, **{"from": "2026-03-02", "to": "2026-03-01"})

    assert not at.exception
    assert "“From” is after “To”" in at.warning[0].value
    assert at.info[0].value == "No generations match these filters."


def test_the_exports_hold_exactly_the_filtered_batches(open_app, seeded, captured_downloads):  # noqa: F811
    import io

    import pandas as pd

    from lora_core.arena import ratings

    downloads = captured_downloads
    at = open_history(open_app, lora=["beta"], status="succeeded")

    assert set(downloads) == {
        "lora-studio-history.csv", "lora-studio-history.parquet", "lora-studio-votes.csv"
    }  # fmt: skip
    votes = pd.read_csv(io.BytesIO(downloads["lora-studio-votes.csv"]()))
    assert list(votes.columns) == ratings.EXPORT_COLUMNS and votes.empty  # no arena yet
    csv = pd.read_csv(io.BytesIO(downloads["lora-studio-history.csv"]()), dtype={"seed": str})
    parquet = pd.read_parquet(io.BytesIO(downloads["lora-studio-history.parquet"]()))
    shown = table_column(at, "Prompt")
    for exported in (csv, parquet):
        assert list(exported["prompt"]) == shown == ["a lighthouse", "a fox_den at dusk"]
        assert set(exported["trigger_word"]) == {"beta"}
        assert set(exported["status"]) == {"succeeded"}


def test_only_generations_with_an_image_i_starred_is_a_filter_in_the_link(open_app, seeded):  # noqa: F811

    for image_id in ("b4-1", "b8-0"):
        star(seeded, "guest", image_id)

    at = open_history(open_app)
    open_filters(at).checkbox(key="starred").check().run()

    assert not at.exception
    assert table_column(at, "Prompt") == ["a lighthouse", "a fox_den at dusk"]
    shared = open_history(open_app, starred="true")  # the link, opened again
    assert table_column(shared, "Prompt") == ["a lighthouse", "a fox_den at dusk"]


@pytest.mark.both_backends
def test_the_summary_counts_every_batch_added_between_two_renders(
    open_app, add_lora, engine, policy, preview_generator, media_store
):
    """The overview is cached per data version: a batch generated here, or images the
    original app wrote (older than every batch), show in the very next render."""
    from lora_core.generation import service

    def generate(prompt: str) -> None:
        service.generate(
            kit=GenerationKit(
                engine=engine, generator=preview_generator, policy=policy, store=media_store
            ),
            user="guest",
            lora_id="lora-a",
            prompt=prompt,
        )

    add_lora("lora-a", trigger_word="alpha")
    generate("a cat")
    at = open_history(open_app)
    assert (metrics(at)["Batches"], metrics(at)["Images"]) == ("1", "4")

    generate("a dog")
    at.run()
    assert (metrics(at)["Batches"], metrics(at)["Images"]) == ("2", "8")
    assert table_column(at, "Prompt") == ["a dog", "a cat"]

    with session_scope(engine) as session:  # the original app: images, no batch
        for number in range(2):
            session.add(
                GeneratedImage(
                    id=f"legacy-{number}",
                    lora_training_id="lora-a",
                    user="0xabc",
                    prompt="from the original app",
                    image_url=f"https://cdn.example/legacy/{number}.jpg",
                    created_at=to_iso(NOW - timedelta(days=3)),
                )
            )
        session.commit()
    at.run()
    assert (metrics(at)["Batches"], metrics(at)["Images"]) == ("3", "10")
    assert metrics(at)["Users"] == "2"


def test_the_starred_filters_summary_follows_new_stars(open_app, seeded):  # noqa: F811

    at = open_history(open_app, starred="true")
    assert at.info[0].value == "No generations match these filters."  # no row of zeros

    star(seeded, "guest", "b8-0")
    at.run()

    assert metrics(at)["Batches"] == "1"


def test_the_charts_are_drawn_with_alt_text_that_says_what_they_show(open_app, seeded):  # noqa: F811
    """Only the open tab's chart is drawn (a browser draws every chart it is sent); each
    tab chosen draws its own."""
    at = open_history(open_app)

    assert not at.get("vega_lite_chart")  # folded: the table first, no chart drawn
    assert at.expander[-1].label.startswith("Charts: batches per day")
    alts = []
    for tab in ("Batches per day", "Top LoRAs", "Top users", "Prompt words"):
        open_charts(at, tab)
        [chart] = at.get("vega_lite_chart")
        alts.append(chart.proto.alt)
        if tab == "Top LoRAs":
            spec = json.loads(chart.proto.spec)
    assert alts[0].startswith("Batches per day, stacked by LoRA, over ")
    assert alts[1].startswith("LoRAs by batches, the most first: alpha ")
    assert alts[2].startswith("Users by batches, the most first: ")
    assert alts[3].startswith("Prompt words by count, the most first: ")
    assert spec["encoding"]["y"] == {
        "field": "lora", "type": "nominal", "title": "lora", "sort": "-x"
    }  # fmt: skip


def test_the_charts_data_is_read_only_once_they_are_unfolded(open_app, seeded, monkeypatch):  # noqa: F811
    """The charts' scans (the spend ones most of a cold view's time at 100,000 images) wait
    for the charts to be opened; the summary above the table does not."""
    from lora_core.history import analytics

    built: list[object] = []
    real_overview = analytics.overview
    monkeypatch.setattr(analytics, "overview", lambda **kw: built.append(kw) or real_overview(**kw))

    at = open_history(open_app)

    assert metrics(at)["Batches"] == "9" and built == []
    open_charts(at, "Spend by user")
    assert len(built) == 1 and len(at.get("vega_lite_chart")) == 1


def test_filters_are_folded_away_and_say_how_many_are_set(open_app, seeded):  # noqa: F811
    plain = open_history(open_app)
    filtered = open_history(open_app, user="ann", q="red")

    assert [e.label for e in plain.expander][:1] == ["Filters"]
    assert [e.label for e in filtered.expander][:1] == ["Filters · 2 active"]
    assert open_filters(plain).button(key="clear_filters").disabled


def test_folded_filters_are_drawn_once_opened_and_kept_while_set(open_app, seeded):  # noqa: F811
    """Folded with nothing set, the eleven filter widgets are not drawn (the page reruns
    when they are unfolded); a filter that is set stays drawn, folded or not, so that it
    keeps its value and the link."""
    at = open_history(open_app)
    assert not at.text_input and not at.multiselect
    assert "clear_filters" not in [button.key for button in at.button]
    assert len(table_rows(at)) == 9

    open_filters(at).text_input(key="user").input("bob").run()
    assert len(table_rows(at)) == 3

    at.session_state["history_filters"] = False  # folded again: the filter still holds
    at.run()
    assert not at.exception
    assert at.text_input(key="user").value == "bob"
    assert len(table_rows(at)) == 3
    assert [e.label for e in at.expander][:1] == ["Filters · 1 active"]


def test_clear_filters_empties_every_filter_and_the_link(open_app, seeded):  # noqa: F811
    at = open_history(open_app, lora=["alpha"], user="ann", q="red", status="completed")
    assert metrics(at)["Batches"] != "9"

    open_filters(at).button(key="clear_filters").click().run()

    assert not at.exception
    assert metrics(at)["Batches"] == "9"
    open_filters(at)  # (AppTest does not keep an expander open between runs)
    assert at.text_input(key="user").value == "" and at.multiselect(key="lora").value == []
    assert not any(key in at.query_params for key in ("lora", "user", "q", "status"))
    assert [e.label for e in at.expander][:1] == ["Filters"]


def test_no_match_offers_to_clear_the_filters(open_app, seeded):  # noqa: F811
    at = open_history(open_app, user="nobody")

    at.button(key="clear_filters_empty").click().run()

    assert metrics(at)["Batches"] == "9"


def test_a_selected_row_shows_its_whole_prompt(open_app, seeded):  # noqa: F811
    at = open_history(open_app, user="bob", q="lighthouse")
    (row,) = table_rows(at)
    assert row["Time (UTC)"].href == "?user=bob&q=lighthouse&batch=b8"  # the filters kept

    at = open_history(open_app, user="bob", q="lighthouse", batch="b8")  # the link followed

    assert not at.exception
    assert [c.value for c in at.code] == ["a lighthouse"]  # as stored, never cut
    facts = readable(" ".join(c.value for c in at.caption))
    assert "Succeeded · 4 images shown · 60.0 s" in facts
    # Its settings as an image's details word them (`recipe.describe`), and its seed.
    assert "scale 1.5 · 28 steps · guidance 3.5 · 1024×1024 · seed 18446744073709551557" in facts
    assert [link.label for link in at.get("page_link")][-1:] == ["Open its LoRA"]
    cards = figures(at)  # its images, each a link to it large over its LoRA's page
    assert [re.search(r'href="([^"]+)"', card)[1] for card in cards] == [
        f"lora?id=lora-b&amp;image=b8-{number}" for number in range(4)
    ]


DURATION_ORDER = [
    "from a deleted lora", "a lighthouse", "red fox again", "city at night", "red roses 100%",
    "a fox_den at dusk", "A red Fox in snow",
    "a blue whale", "a quiet lake",  # no duration (failed, pending): last either way
]  # fmt: skip


def test_a_columns_header_sorts_every_batch_by_it_from_the_link(open_app, seeded):  # noqa: F811
    at = open_history(open_app, sort="-duration")

    assert not at.exception
    assert table_column(at, "Prompt") == DURATION_ORDER
    headers = {header.text.rstrip(" ▲▼"): header for header in table_headers(at)}
    assert headers["Duration"].sort == "descending"
    assert headers["Duration"].href == "?sort=duration"  # clicked again: the other way
    assert headers["User"].href == "?sort=user" and headers["User"].sort is None
    assert headers["Images"].href == "?sort=-images"  # figures: largest first
    assert headers["Prompt"].href is None  # not sortable
    assert table_rows(at)[0]["Time (UTC)"].href == "?sort=-duration&batch=b9"

    ascending = open_history(open_app, sort="duration")
    assert table_column(ascending, "Prompt") == [*DURATION_ORDER[6::-1], *DURATION_ORDER[7:]]


def test_sorting_keeps_the_filters_and_the_exports_follow_it(
    open_app,
    seeded,  # noqa: F811
    captured_downloads,
):
    import io

    import pandas as pd

    at = open_history(open_app, user="bob", sort="user")

    assert table_column(at, "Prompt") == ["a blue whale", "a lighthouse", "city at night"]
    headers = {header.text.rstrip(" ▲▼"): header for header in table_headers(at)}
    assert headers["Duration"].href == "?user=bob&sort=-duration"
    assert headers["User"].sort == "ascending"
    at = open_history(open_app, user="bob", sort="-duration")
    csv = pd.read_csv(io.BytesIO(captured_downloads["lora-studio-history.csv"]()))
    assert list(csv["prompt"]) == table_column(at, "Prompt") == [
        "a lighthouse", "city at night", "a blue whale"
    ]  # fmt: skip


def test_an_unknown_sort_in_the_link_is_explained_and_newest_comes_first(open_app, seeded):  # noqa: F811
    at = open_history(open_app, sort="**price**")

    assert not at.exception
    assert "not a column" in at.warning[0].value
    assert "**price**" not in at.warning[0].value  # shown literally (escaped)
    assert table_column(at, "Prompt")[:2] == ["A red Fox in snow", "a blue whale"]


def test_one_day_of_batches_is_one_bar_in_a_week_with_level_labels(open_app, seeded):  # noqa: F811
    from ui.charts import day_domain

    at = open_charts(open_history(open_app))
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)

    assert spec["encoding"]["x"]["axis"] == {"labelAngle": 0, "labelOverlap": "greedy"}
    assert len(spec["encoding"]["x"]["scale"]["domain"]) >= 7
    assert day_domain(["2026-11-30"]) == [f"2026-11-{day}" for day in range(24, 31)]
    assert day_domain(["2026-11-01", "2026-11-10", "2026-11-03"]) == [
        f"2026-11-{day:02d}" for day in range(1, 11)
    ]  # every day between, quiet ones included


def test_each_batch_shows_its_settings_and_the_scale_is_a_filter(open_app, add_lora):
    from lora_core.generation.recipe import Recipe
    from ui import context

    add_lora("tuned", trigger_word="tuned")
    open_history(open_app)  # builds the app's parts (the Studio), as a first visit does
    for scale in (0.5, 1.5):
        context.studio().generate(user="ann", lora_id="tuned", prompt=f"at {scale}",
                                  recipe=Recipe(lora_scale=scale, steps=12, seed=7))  # fmt: skip

    at = open_history(open_app, scale="0.5")

    assert not at.exception
    (row,) = table_rows(at)
    assert row["Prompt"].text == "at 0.5"
    assert (row["Scale"].text, row["Steps"].text, row["Seed"].text) == ("0.5", "12", "7")
    assert at.multiselect(key="scale").options == ["0.5", "1.5"]


def test_spend_follows_the_size_of_what_fal_returned_and_the_price_setting(
    open_app, add_lora, monkeypatch
):
    from lora_core.generation.recipe import Recipe
    from ui import context

    monkeypatch.setenv("FAL_PRICE_PER_MEGAPIXEL", "0.5")
    add_lora("sized", trigger_word="sized")
    open_history(open_app)
    context.studio().generate(
        user="ann", lora_id="sized", prompt="small", recipe=Recipe(image_size="square")
    )  # 4 x 512x512
    context.studio().generate(
        user="bob", lora_id="sized", prompt="wide", recipe=Recipe(image_size="landscape_16_9")
    )  # 4 x 1024x576

    at = open_history(open_app)

    megapixels = 4 * 0.262144 + 4 * 0.589824
    assert metrics(at)["Est. spend"] == f"${megapixels * 0.5:,.2f}"  # $1.70
    spend_charts = []
    for tab in ("Spend by user", "Spend by LoRA"):
        open_charts(at, tab)
        spend_charts += at.get("vega_lite_chart")
        assert "per output megapixel" in " ".join(c.value for c in at.caption)
    assert [chart.proto.alt.split(",")[0] for chart in spend_charts] == [
        "Estimated spend per day by user", "Estimated spend per day by LoRA"
    ]  # fmt: skip
    assert all("$1.70 in all" in chart.proto.alt for chart in spend_charts)


def test_history_filters_by_the_loras_verdict_and_tag_from_the_link(open_app, seeded, engine):  # noqa: F811
    from lora_core.data.models import Verdict
    from lora_core.gallery import scorecards
    from lora_core.identity import Identity

    for lora_id, verdict, tags in (
        ("lora-a", Verdict.RECOMMENDED, ("portraits",)),
        ("lora-b", Verdict.RECOMMENDED, ("style",)),
        ("lora-c", Verdict.NOT_RECOMMENDED, ("style",)),
    ):
        scorecards.save(engine=engine, who=Identity(user="root", is_admin=True), lora_id=lora_id,
                        notes="", tags=tags, verdict=verdict)  # fmt: skip

    at = open_history(open_app, verdict="Recommended", tag="style")  # bound: labels

    assert not at.exception
    assert sorted(set(table_column(at, "LoRA"))) == ["beta"]  # lora-b's batches only
    assert at.selectbox(key="verdict").value == "recommended"


def test_history_finds_what_a_lora_was_stacked_in_and_shows_and_exports_the_stack(
    open_app, add_lora, engine, generate_batch
):
    from lora_core.gallery.queries import lora_names
    from lora_core.generation.recipe import Recipe, StackedLora
    from lora_core.history import listing
    from lora_core.history.filters import HistoryFilter

    add_lora("subject", trigger_word="ohwx")
    add_lora("style", trigger_word="wtrclr", weights_url="https://w.example/s.st")
    add_lora("other", trigger_word="neonnoir", weights_url="https://w.example/o.st")
    generate_batch("subject", "a fox", recipe=Recipe(stack=(StackedLora("style", 0.6),)))
    generate_batch("style", "a boat")
    generate_batch("other", "a bystander")  # made without style: never matched

    at = open_history(open_app, used=["wtrclr"])  # bound: the label in the link

    assert not at.exception
    by_prompt = dict(zip(table_column(at, "Prompt"), table_column(at, "Stacked with"), strict=True))
    assert by_prompt == {"a fox": "wtrclr at 0.6", "a boat": ""}
    with session_scope(engine) as session:
        assert set(lora_names(session=session)) >= {"style"}
        frame = listing.export_frame(
            session=session, history_filter=HistoryFilter(used_lora_ids=("style",))
        )
    exported = dict(zip(frame["prompt"], frame["added_loras"], strict=True))
    assert exported == {"a fox": "style:0.6", "a boat": ""}
    assert list(frame.columns)[-1] == "added_loras"


def test_a_new_order_starts_on_the_first_page(open_app, add_lora, engine):
    add_lora("many", trigger_word="many")
    with session_scope(engine) as session:
        for number in range(60):  # two pages of 50; the oldest took longest
            session.add(
                GenerationBatch(
                    id=f"m{number:02d}", lora_training_id="many", user="ann",
                    prompt=f"take {number}", status="succeeded", images_returned=0,
                    created_at=to_iso(NOW - timedelta(minutes=number)),
                    duration_ms=(number + 1) * 1000,
                )
            )  # fmt: skip
        session.commit()
    at = open_history(open_app)
    at.session_state["history_page"] = 2
    at.run()
    assert table_column(at, "Prompt")[0] == "take 50"  # the second page

    at.query_params["sort"] = "-duration"  # a header's link followed
    at.run()

    assert not at.exception
    prompts = table_column(at, "Prompt")
    assert (len(prompts), prompts[0]) == (50, "take 59")  # the first page, longest first
