-- Library sync: the items of each account's library, and one sync cursor per account.
-- Times are POSIX seconds (REAL). Library rows have no foreign key to accounts on
-- purpose: `logout` forgets an account's secrets but keeps its library.
CREATE TABLE library_items (
    account        TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    title          TEXT,
    authors        TEXT,
    data           TEXT NOT NULL,            -- the item as the source sent it (JSON object)
    digest         TEXT NOT NULL,            -- hash of data: tells "updated" from "unchanged"
    seen_sync      TEXT,                     -- id of the last sync that saw the item
    first_seen_at  REAL NOT NULL,
    updated_at     REAL NOT NULL,            -- last change of data (or return after removal)
    removed_at     REAL,                     -- set when a finished sync no longer saw it
    download_path  TEXT,
    download_size  INTEGER,
    downloaded_at  REAL,
    PRIMARY KEY (account, item_id)
);

-- One row per account: the running sync's cursor (state 'running'), else the
-- last finished sync's figures (state 'finished').
CREATE TABLE library_syncs (
    account      TEXT PRIMARY KEY,
    sync_id      TEXT NOT NULL,
    source       TEXT NOT NULL,              -- the source's identity; a change restarts the sync
    state        TEXT NOT NULL,              -- running | finished
    next_page    INTEGER NOT NULL,           -- page to fetch next (page mode)
    cursor       TEXT,                       -- cursor to send next (cursor mode)
    total_items  INTEGER,                    -- as the source last reported it
    total_pages  INTEGER,
    pages        INTEGER NOT NULL DEFAULT 0,
    items_seen   INTEGER NOT NULL DEFAULT 0,
    added        INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    started_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    finished_at  REAL
);
