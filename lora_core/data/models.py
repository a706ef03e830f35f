"""Every table, in one module.

`lora_trainings` and `generated_images` keep exactly the original web app's columns,
types and indexes, so both apps can share one database. Ours are added beside them:
the `generation_batches` table, a nullable `generated_images.batch_id`, and extra indexes.
Timestamps are TEXT in JavaScript ISO format (see `lora_core.data.clock`).

Every table's user is the column `wallet_address` (the original app signed users in with a
wallet, hence the name); here it holds the login's email (or subject), or the demo's shared
identity, and in Python it is the attribute `user`.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, Index, Text, text
from sqlmodel import Field, SQLModel


class LoraStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class BatchStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RequestId(StrEnum):
    """What `lora_trainings.request_id` starts with when it is not fal's request id: the
    one list of our own kinds, for whoever asks "may a trainer be asked about this one?"."""

    RESERVED = "reserved-"  # a training slot taken here, not yet submitted to fal
    REGISTERED = "registered-"  # registered here: trained elsewhere, never followed
    PREVIEW = "preview-"  # the offline trainer's (its start time follows)
    DEMO = "demo-request-"  # the demo's LoRA "in training", which never ends

    def new(self, suffix: str) -> str:
        return f"{self.value}{suffix}"


class LoraTraining(SQLModel, table=True):
    """A LoRA trained by fal (written by the original trainer app, read here)."""

    __tablename__ = "lora_trainings"
    __table_args__ = (
        Index("idx_lora_trainings_created", "created_at"),
        # Ours: the training quota counts a user's trainings in the window.
        Index("idx_lora_trainings_wallet_created", "wallet_address", "created_at"),
    )

    id: str = Field(primary_key=True, sa_type=Text)
    request_id: str = Field(sa_type=Text, unique=True)  # fal's, or one of `RequestId`
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    trigger_word: str = Field(sa_type=Text)
    steps: int | None = None
    image_urls: str | None = Field(default=None, sa_type=Text)
    lora_weights_url: str | None = Field(default=None, sa_type=Text)
    status: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)
    # Ours, nullable: an admin hid it from the gallery.
    hidden: bool | None = None
    # Ours, nullable: why a training started here failed, as the user is told.
    error: str | None = Field(default=None, sa_type=Text)
    # Ours, nullable: a display name given when an existing LoRA was registered here.
    name: str | None = Field(default=None, sa_type=Text)
    # Ours, nullable: trained here as a style (fal's `is_style`) or a subject.
    is_style: bool | None = None
    # Ours, nullable. fal's files expire: our durable copy of the weights (`lora_weights_url`
    # stays fal's, the original), and the training's config file, fal's and ours.
    weights_copy_url: str | None = Field(default=None, sa_type=Text)
    config_url: str | None = Field(default=None, sa_type=Text)
    config_copy_url: str | None = Field(default=None, sa_type=Text)
    # Ours, nullable: the process submitting it, or the sweep asking fal about it, holds a
    # lease (`lora_core.data.leases`).
    lease_holder: str | None = Field(default=None, sa_type=Text)
    lease_until: str | None = Field(default=None, sa_type=Text)
    # Ours, nullable: its state as fal last reported it to the background sweep (JSON:
    # stage, queue position, the last log lines, when asked), which pages show.
    progress: str | None = Field(default=None, sa_type=Text)


class GeneratedImage(SQLModel, table=True):
    """One image returned by fal. `prompt` is the user's raw prompt, without the trigger word."""

    __tablename__ = "generated_images"
    __table_args__ = (
        Index("idx_gen_images_lora", "lora_training_id"),
        Index("idx_gen_images_wallet", "wallet_address"),
        Index("idx_gen_images_created", "created_at"),
        # Ours: serves "images of this LoRA, newest first" without a sort.
        Index("idx_gen_images_lora_created", "lora_training_id", "created_at"),
        Index("idx_gen_images_batch", "batch_id"),
        # Ours, partial: the images galleries show (not hidden), newest first per LoRA:
        # what the LoRA page pages through and counts. Queries spell `hidden IS NULL`.
        Index(
            "idx_gen_images_lora_created_shown",
            "lora_training_id",
            "hidden",  # always NULL here: listed so that the index covers the condition
            "created_at",
            sqlite_where=text("hidden IS NULL"),
        ),
        # Ours, partial: "this LoRA's latest shown images for this prompt", for comparing
        # LoRAs. Three equality columns, so the planner never prefers the index above (a
        # set's order decides ties, and that one would scan every image of the LoRA).
        Index(
            "idx_gen_images_lora_prompt_shown",
            "lora_training_id",
            "prompt",
            "hidden",
            "created_at",
            sqlite_where=text("hidden IS NULL"),
        ),
        # Ours, partial: the few hidden images per LoRA, counted in the key of the LoRA
        # page's cached image count (a hide in any process changes it). Spelled
        # `hidden IS NOT NULL`.
        Index(
            "idx_gen_images_lora_hidden",
            "lora_training_id",
            "hidden",  # listed so that the index covers the condition
            sqlite_where=text("hidden IS NOT NULL"),
        ),
        # Ours, partial: the original app's images (no batch) by user and time, which the
        # quota counts; empty on a database only this app writes.
        Index(
            "idx_gen_images_legacy_wallet_created",
            "wallet_address",
            "created_at",
            sqlite_where=text("batch_id IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, sa_type=Text)
    lora_training_id: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    prompt: str = Field(sa_type=Text)
    image_url: str = Field(sa_type=Text)
    image_width: int | None = None
    image_height: int | None = None
    # TEXT: fal seeds can exceed 2^63.
    seed: str | None = Field(default=None, sa_type=Text)
    created_at: str = Field(sa_type=Text)
    # Ours, nullable: rows written by the original app have none of them.
    batch_id: str | None = Field(default=None, sa_type=Text)
    # fal's own URL when `image_url` is our durable copy (or still fal's, awaiting repair).
    original_url: str | None = Field(default=None, sa_type=Text)
    # fal's safety checker flagged it (`has_nsfw_concepts`): never shown as a result.
    nsfw: bool | None = None
    # Ours: its author or an admin hid it from the galleries (History keeps it). True or
    # NULL, never false, so that the partial index above holds exactly the shown images.
    hidden: bool | None = None
    # Ours: the small WebP grids show (`lora_core.thumbnails`); None until it is made.
    thumbnail_url: str | None = Field(default=None, sa_type=Text)


class GenerationBatch(SQLModel, table=True):
    """One click on "Generate 4 Images": the unit the quota counts."""

    __tablename__ = "generation_batches"
    __table_args__ = (
        Index("idx_gen_batches_wallet_created", "wallet_address", "created_at"),
        Index("idx_gen_batches_lora_created", "lora_training_id", "created_at"),
        Index("idx_gen_batches_created", "created_at"),
        Index("idx_gen_batches_finished", "finished_at"),
        Index("idx_gen_batches_status_duration", "status", "duration_ms"),
        # History sorted by duration: its page's ids read in this order, not sorted (a
        # descending read puts batches without a duration last, as the table wants).
        Index("idx_gen_batches_duration", "duration_ms", "created_at", "id"),
        # Ours, partial: only the few pending batches, which recovery looks for on every LoRA
        # page view (queries must spell `status = 'pending'` literally to use it). `status`
        # leads so that, without statistics, SQLite prefers it to (lora, created_at).
        Index(
            "idx_gen_batches_pending",
            "status",
            "lora_training_id",
            "created_at",
            sqlite_where=text(f"status = '{BatchStatus.PENDING}'"),
        ),
        # Ours: a sweep's cells (`lora_core.lab.sweeps`).
        Index("idx_gen_batches_sweep", "sweep_id", "created_at"),
    )

    id: str = Field(primary_key=True, sa_type=Text)
    lora_training_id: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    prompt: str = Field(sa_type=Text)
    status: str = Field(default=BatchStatus.PENDING, sa_type=Text)
    fal_request_id: str | None = Field(default=None, sa_type=Text)
    images_returned: int | None = None
    # Of those, the images fal's safety checker flagged (`has_nsfw_concepts`): fal returns
    # them black; stored, never shown. None: stored before it was counted, or not finished.
    images_flagged: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    created_at: str = Field(sa_type=Text)
    finished_at: str | None = Field(default=None, sa_type=Text)
    # Milliseconds from reservation to the stored result (succeeded batches only).
    duration_ms: int | None = None
    # The process generating it holds a lease, renewed while it waits on fal; another
    # process takes over once it lapses (`lora_core.data.leases`). None: written by an
    # earlier version of this app.
    lease_holder: str | None = Field(default=None, sa_type=Text)
    lease_until: str | None = Field(default=None, sa_type=Text)
    # How it was generated (`lora_core.generation.recipe`); the seed fal used is on each
    # image, the seed asked for (None: fal picked one) here. None: the plan's settings.
    lora_scale: float | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    image_size: str | None = Field(default=None, sa_type=Text)
    requested_seed: str | None = Field(default=None, sa_type=Text)
    # A cell of a sweep: its sweep, column and row, and one image (`num_images`). None:
    # a batch of the plan's 4 images, outside any sweep.
    sweep_id: str | None = Field(default=None, sa_type=Text)
    sweep_x: int | None = None
    sweep_y: int | None = None
    num_images: int | None = None
    # The prompt fal got (the trigger words applied, `lora_core.generation.prompts`). None:
    # stored before it was kept; it was the plan's rule with the LoRA's trigger word.
    full_prompt: str | None = Field(default=None, sa_type=Text)


class BatchLora(SQLModel, table=True):
    """A LoRA a batch was stacked with, besides its first (`GenerationBatch.lora_training_id`
    and `lora_scale` keep meaning the first, so the original app still reads the batch):
    `position` 1, 2, … is its place in fal's `loras` list."""

    __tablename__ = "batch_loras"
    __table_args__ = (Index("idx_batch_loras_lora", "lora_training_id", "batch_id"),)

    batch_id: str = Field(primary_key=True, sa_type=Text)
    position: int = Field(primary_key=True)
    lora_training_id: str = Field(sa_type=Text)
    lora_scale: float


class Sweep(SQLModel, table=True):
    """An X/Y sweep as it was asked (`lora_core.lab`): a LoRA, a prompt, the base settings
    with a fixed seed, and one or two axes (their kind and values, the values as a JSON
    list). Its cells are batches (`GenerationBatch.sweep_id`); a cell of the LoRA axis's
    baseline has `NO_LORA` for its LoRA."""

    __tablename__ = "sweeps"
    __table_args__ = (Index("idx_sweeps_created", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    lora_training_id: str = Field(sa_type=Text)
    prompt: str = Field(sa_type=Text)
    x_kind: str = Field(sa_type=Text)
    x_values: str = Field(sa_type=Text)
    y_kind: str | None = Field(default=None, sa_type=Text)
    y_values: str | None = Field(default=None, sa_type=Text)
    lora_scale: float
    num_inference_steps: int
    guidance_scale: float
    image_size: str = Field(sa_type=Text)
    seed: str = Field(sa_type=Text)  # TEXT: seeds can exceed 2^63
    created_at: str = Field(sa_type=Text)
    # A run of an evaluation suite (`lora_core.lab.suites`): its LoRAs across, its prompts
    # and seeds down. None: a sweep typed in the Lab.
    suite_id: str | None = Field(default=None, sa_type=Text)
    # LoRAs stacked on every cell unless an axis varies them ("id:scale …"); None: none.
    stack: str | None = Field(default=None, sa_type=Text)


class ImageFavorite(SQLModel, table=True):
    """A user's star on an image (ours). The LoRA is kept beside the image so that a LoRA's
    most-starred image, its gallery cover, is found without reading its images."""

    __tablename__ = "image_favorites"
    __table_args__ = (
        Index("idx_image_favorites_lora_image", "lora_training_id", "image_id", "created_at"),
        Index("idx_image_favorites_user_created", "wallet_address", "created_at"),
    )

    user: str = Field(sa_column=Column("wallet_address", Text, primary_key=True))
    image_id: str = Field(primary_key=True, sa_type=Text)
    lora_training_id: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)


class ArenaChoice(StrEnum):
    """A voter's verdict on a pair, as stored: the pair's own `a` and `b`, never the sides
    a voter saw (which are shuffled per voter)."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Arena(SQLModel, table=True):
    """Blind A/B votes over images that share prompt and seed (`lora_core.arena`): made
    from sweeps (`sources`, a JSON list of sweep ids) or from a collection (`collection_id`,
    `sources` then "[]"), its arms and pairs fixed when made."""

    __tablename__ = "arenas"
    __table_args__ = (Index("idx_arenas_created", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    name: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    sources: str = Field(sa_type=Text)
    collection_id: str | None = Field(default=None, sa_type=Text)
    created_at: str = Field(sa_type=Text)
    # Never shown: keys the draw of sides and order (`lora_core.arena.voting`), so that no
    # one can work out which arm a voter will see on the left from public pair ids.
    salt: str | None = Field(default=None, sa_type=Text)


class ArenaArm(SQLModel, table=True):
    """One arm of an arena: a LoRA (or `NO_LORA`, the baseline) with its settings. Its id
    is opaque: a voter's page carries pair ids only, never an arm's."""

    __tablename__ = "arena_arms"
    __table_args__ = (Index("idx_arena_arms_arena", "arena_id"),)

    id: str = Field(primary_key=True, sa_type=Text)
    arena_id: str = Field(sa_type=Text)
    lora_training_id: str = Field(sa_type=Text)
    lora_scale: float | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    image_size: str | None = Field(default=None, sa_type=Text)
    label: str = Field(sa_type=Text)
    # The LoRAs it stacks on its own, "id:scale id:scale" in fal's order; None: none.
    stack: str | None = Field(default=None, sa_type=Text)


class ArenaPair(SQLModel, table=True):
    """Two images of one prompt and seed from two arms (`a`, `b`), in the arena's order."""

    __tablename__ = "arena_pairs"
    __table_args__ = (Index("idx_arena_pairs_arena", "arena_id", "position"),)

    id: str = Field(primary_key=True, sa_type=Text)
    arena_id: str = Field(sa_type=Text)
    position: int
    prompt: str = Field(sa_type=Text)
    seed: str | None = Field(default=None, sa_type=Text)
    arm_a: str = Field(sa_type=Text)
    arm_b: str = Field(sa_type=Text)
    image_a: str = Field(sa_type=Text)
    image_b: str = Field(sa_type=Text)


class ArenaVote(SQLModel, table=True):
    """A voter's one vote on a pair: the key makes a second click, tab or replica a no-op."""

    __tablename__ = "arena_votes"
    __table_args__ = (Index("idx_arena_votes_arena", "arena_id", "created_at"),)

    pair_id: str = Field(primary_key=True, sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, primary_key=True))
    arena_id: str = Field(sa_type=Text)
    choice: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)


class Suite(SQLModel, table=True):
    """An evaluation suite (`lora_core.lab.suites`): a named, shared list of prompts (each
    may say `{trigger}`) and seeds, and the settings every run of it uses."""

    __tablename__ = "suites"
    __table_args__ = (Index("idx_suites_created", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    name: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    prompts: str = Field(sa_type=Text)  # a JSON list
    seeds: str = Field(sa_type=Text)  # a JSON list of seeds, as text
    lora_scale: float
    num_inference_steps: int
    guidance_scale: float
    image_size: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)
    updated_at: str = Field(sa_type=Text)
    # Run on every LoRA whose training started after this moment; None: only by hand.
    auto_run_since: str | None = Field(default=None, sa_type=Text)


class SuiteAutoRun(SQLModel, table=True):
    """A suite's run on a new training, started by the background sweep: claimed once per
    suite and LoRA (the key), with the sweep it started or why it could not (`note`)."""

    __tablename__ = "suite_auto_runs"

    suite_id: str = Field(primary_key=True, sa_type=Text)
    lora_training_id: str = Field(primary_key=True, sa_type=Text)
    sweep_id: str | None = Field(default=None, sa_type=Text)
    note: str | None = Field(default=None, sa_type=Text)
    created_at: str = Field(sa_type=Text)


class Verdict(StrEnum):
    RECOMMENDED = "recommended"
    NOT_RECOMMENDED = "not_recommended"
    UNDER_TEST = "under_test"


class LoraScorecard(SQLModel, table=True):
    """What the team learned about a LoRA (`lora_core.gallery.scorecards`): notes, tags
    (a JSON list) and a verdict with who set it and when."""

    __tablename__ = "lora_scorecards"
    __table_args__ = (Index("idx_lora_scorecards_verdict", "verdict"),)

    lora_training_id: str = Field(primary_key=True, sa_type=Text)
    notes: str | None = Field(default=None, sa_type=Text)
    tags: str | None = Field(default=None, sa_type=Text)
    verdict: str | None = Field(default=None, sa_type=Text)
    verdict_by: str | None = Field(default=None, sa_type=Text)
    verdict_at: str | None = Field(default=None, sa_type=Text)
    updated_by: str = Field(sa_type=Text)
    updated_at: str = Field(sa_type=Text)
    # What the Generate dialog starts from for this LoRA; None: the plan's.
    recommended_scale: float | None = None
    recommended_steps: int | None = None
    recommended_guidance: float | None = None
    # How its trigger word is best used, e.g. "{prompt}, {trigger} style"; None: the plan's
    # "… in the style of {trigger}" (`lora_core.generation.prompts`).
    prompt_template: str | None = Field(default=None, sa_type=Text)


class ScorecardChange(SQLModel, table=True):
    """One change of a scorecard's field: who, when, from what to what."""

    __tablename__ = "lora_scorecard_changes"
    __table_args__ = (Index("idx_scorecard_changes_lora", "lora_training_id", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    lora_training_id: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    field: str = Field(sa_type=Text)
    old: str | None = Field(default=None, sa_type=Text)
    new: str | None = Field(default=None, sa_type=Text)
    created_at: str = Field(sa_type=Text)


class ImageWord(SQLModel, table=True):
    """A word (or two adjacent words, "red fox") of an image's prompt, folded, with the
    image's time: a word's images newest first from one index (`lora_core.search`)."""

    __tablename__ = "image_words"
    __table_args__ = (
        Index("idx_image_words_word_created", "word", "created_at", "image_id"),
        Index("idx_image_words_image", "image_id"),
    )

    word: str = Field(primary_key=True, sa_type=Text)
    image_id: str = Field(primary_key=True, sa_type=Text)
    created_at: str = Field(sa_type=Text)


class IndexedImage(SQLModel, table=True):
    """An image whose prompt's words are in `image_words`."""

    __tablename__ = "indexed_images"

    image_id: str = Field(primary_key=True, sa_type=Text)


class SavedSearch(SQLModel, table=True):
    """A named search shared with the team: its link's parameters (JSON)."""

    __tablename__ = "saved_searches"
    __table_args__ = (Index("idx_saved_searches_created", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    name: str = Field(sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    query: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)


class SavedSearchView(SQLModel, table=True):
    """When a user last looked at a saved search: its new matches are those after."""

    __tablename__ = "saved_search_views"

    search_id: str = Field(primary_key=True, sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, primary_key=True))
    seen_at: str = Field(sa_type=Text)


class Collection(SQLModel, table=True):
    """A named, shared set of images from any LoRAs (`lora_core.gallery.collections`): its
    owner describes it; members are added by the owner, or by anyone when it says so."""

    __tablename__ = "collections"
    __table_args__ = (Index("idx_collections_created", "created_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    name: str = Field(sa_type=Text)
    description: str | None = Field(default=None, sa_type=Text)
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    anyone_can_add: bool | None = None
    created_at: str = Field(sa_type=Text)


class CollectionImage(SQLModel, table=True):
    """An image in a collection, at its place (`position`, ascending), with who added it."""

    __tablename__ = "collection_images"
    __table_args__ = (
        Index("idx_collection_images_order", "collection_id", "position"),
        Index("idx_collection_images_image", "image_id"),
    )

    collection_id: str = Field(primary_key=True, sa_type=Text)
    image_id: str = Field(primary_key=True, sa_type=Text)
    position: float
    user: str = Field(sa_column=Column("wallet_address", Text, nullable=False))
    created_at: str = Field(sa_type=Text)
