-- Library sync: the items of each account's library and its one sync row.
-- Named blocks, named parameters (see stayfresh/store/_queries.py). The listing
-- differs per backend: library.sqlite.sql / library.postgres.sql.

-- name: get_library_sync
SELECT * FROM library_syncs WHERE account = :account

-- name: put_library_sync
-- the account's one sync row, inserted or replaced whole
INSERT INTO library_syncs (account, sync_id, source, state, next_page, cursor, total_items,
                           total_pages, pages, items_seen, added, updated, removed,
                           started_at, updated_at, finished_at)
VALUES (:account, :sync_id, :source, :state, :next_page, :cursor, :total_items,
        :total_pages, :pages, :items_seen, :added, :updated, :removed,
        :started_at, :updated_at, :finished_at)
ON CONFLICT (account) DO UPDATE SET sync_id = excluded.sync_id, source = excluded.source,
    state = excluded.state, next_page = excluded.next_page, cursor = excluded.cursor,
    total_items = excluded.total_items, total_pages = excluded.total_pages,
    pages = excluded.pages, items_seen = excluded.items_seen, added = excluded.added,
    updated = excluded.updated, removed = excluded.removed, started_at = excluded.started_at,
    updated_at = excluded.updated_at, finished_at = excluded.finished_at

-- name: library_known_items
-- the page's items already stored; locked in id order on PostgreSQL so that two
-- syncs of one account could not both count an item as added
SELECT item_id, digest, removed_at FROM library_items
WHERE account = :account AND item_id = ANY(:ids)
ORDER BY item_id FOR UPDATE

-- name: add_library_item
INSERT INTO library_items (account, item_id, title, authors, data, digest, seen_sync,
                           first_seen_at, updated_at)
VALUES (:account, :item_id, :title, :authors, :data, :digest, :sync_id, :now, :now)

-- name: change_library_item
-- new data, or back after a removal
UPDATE library_items SET title = :title, authors = :authors, data = :data, digest = :digest,
       seen_sync = :sync_id, updated_at = :now, removed_at = NULL
WHERE account = :account AND item_id = :item_id

-- name: touch_library_items
-- unchanged items: only seen by this sync
UPDATE library_items SET seen_sync = :sync_id
WHERE account = :account AND item_id = ANY(:ids)

-- name: remove_unseen_library_items
-- a finished sync: what it did not see is gone (already removed ones stay as they are)
UPDATE library_items SET removed_at = :now
WHERE account = :account AND removed_at IS NULL
  AND (seen_sync IS NULL OR seen_sync <> :sync_id)

-- name: count_library
SELECT COUNT(*) AS n FROM library_items WHERE account = :account AND removed_at IS NULL

-- name: count_library_all
-- removed items too: the primary key alone answers
SELECT COUNT(*) AS n FROM library_items WHERE account = :account

-- name: get_library_item
SELECT account, item_id, title, authors, data, first_seen_at, updated_at, removed_at,
       download_path, download_size, downloaded_at
FROM library_items WHERE account = :account AND item_id = :item_id

-- name: set_library_download
UPDATE library_items SET download_path = :path, download_size = :size, downloaded_at = :now
WHERE account = :account AND item_id = :item_id
