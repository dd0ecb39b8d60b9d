-- Library sync (mirrors sqlite/0003). No foreign key to accounts on purpose:
-- logout forgets an account's secrets but keeps its library.
CREATE TABLE library_items (
    account        TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    title          TEXT,
    authors        TEXT,
    data           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    seen_sync      TEXT,
    first_seen_at  DOUBLE PRECISION NOT NULL,
    updated_at     DOUBLE PRECISION NOT NULL,
    removed_at     DOUBLE PRECISION,
    download_path  TEXT,
    download_size  BIGINT,
    downloaded_at  DOUBLE PRECISION,
    PRIMARY KEY (account, item_id)
);

CREATE TABLE library_syncs (
    account      TEXT PRIMARY KEY,
    sync_id      TEXT NOT NULL,
    source       TEXT NOT NULL,
    state        TEXT NOT NULL,
    next_page    INTEGER NOT NULL,
    cursor       TEXT,
    total_items  INTEGER,
    total_pages  INTEGER,
    pages        INTEGER NOT NULL DEFAULT 0,
    items_seen   INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    started_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    finished_at  DOUBLE PRECISION
);
