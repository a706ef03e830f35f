"""LoRA Studio's core: everything the app knows, and nothing of Streamlit.

Module map (one hop from a behaviour to its folder):

    settings.py        one typed settings object: environment first, then secrets
    errors.py          the few named errors a user can meet; `ui/errors.py` words them
    identity.py        who the user is (from the login only), admins, the exempt
    storage.py         where images and weights live: a local folder or an S3 bucket
    thumbnails.py      the small WebP grids show; which images lack one; made lazily
    weights.py         a LoRA's weights: durable copies, and the URL fal is given
    sweeper.py         a light background sweep (every fal job nobody waits on)
    demo.py            the demo data, and the embedded database filled on first start
    web.py             HTTP clients for what the core fetches (one TLS setup for all)
    studio.py          the Studio: every part built from settings, the use cases wired
    legacy.py          the original web app's rows (no batch): clicks, quota, adoption
    data/              models (every table), db (engines, sessions), schema (Alembic's
                       migrations/, applied once under a lock), leases (who works on a
                       row), rolling_quota (a quota over one counting expression, for
                       generations and trainings), lookups (rows by ids from links), turso
                       and replica (libSQL over HTTP, the embedded replica), clock
    fal/               fal through fal_client: client (at-most-once submits, deadlines,
                       what fal's errors mean), generator (flux-lora), failures (fal's
                       failures as our errors), trainer (training)
    generation/        generators (the interface), preview (offline), service (generate),
                       storing (a finished batch's images copied and rows written once),
                       recovery (following batches nobody waits on), quota, prompts,
                       recipe (the settings of a batch: scale, seed, size, steps, guidance),
                       recipe_files (the recipe inside an image file: written, read),
                       stacks (LoRAs stacked in one generation, the prompt fal gets)
    search/            finding any image: words (folded, phrases), indexing (the words
                       index kept), query (a search from its link, in SQL), saved
                       (named searches shared, what is new in each)
    training/          trainers (the interface), preview (offline), archive (uploads
                       checked and zipped), lifecycle (a training's row, reserved and
                       submitted, and its quota), following (a training followed to fal's
                       answer in the background, and shown),
                       registry (existing LoRAs), names (trigger words, names)
    gallery/           queries (the read side), views (what a page shows, one session),
                       groups (images as their generations), favorites, downloads,
                       moderation, scorecards (what the team learned of a LoRA),
                       collections (shared sets of images from any LoRAs)
    history/           filters, listing (table and exports), analytics (summary, charts),
                       usage (slots and spend per user; the one place a price is applied)
    lab/               axes (X/Y sweeps planned from typed axes, their cost in quota),
                       sweeps (a sweep started, a cell run or retried), pool (this
                       process's cells, a few at a time), views (what pages read: a
                       sweep's grid, the newest sweeps), sweep_files and contact_sheet
                       (the grid as a labelled PNG, the zip)
    arena/             arenas (made from sweeps: arms and pairs of one prompt and seed),
                       voting (blind pairs, one vote per voter per pair), ratings
                       (Bradley–Terry with bootstrap intervals, the leaderboard, exports)
    cli/               demo (seed an empty database, by hand), repair (copy what fal still holds,
                       make missing thumbnails), migrate (the schema to head, by hand)

Layers, top to bottom (no import runs back up): studio → demo, fal (adapters of the
generation and training interfaces), history, arena, cli → lab → training, gallery →
generation → weights → storage → thumbnails, identity → settings, legacy → data → web,
errors; sweeper imports nothing.

Conventions: the core's functions take keyword arguments; a function that takes a session
only reads, one that changes data takes the engine and owns its transaction.
"""
