-- The library listing on SQLite (the shared statements are in library.sql).

-- name: list_library
-- LIKE is case-insensitive for ASCII here, as NOCASE is in the order; -1 is no limit
SELECT account, item_id, title, authors, data, first_seen_at, updated_at, removed_at,
       download_path, download_size, downloaded_at
FROM library_items
WHERE account = :account AND (:include_removed OR removed_at IS NULL)
  AND (:pattern IS NULL OR title LIKE :pattern ESCAPE '\' OR authors LIKE :pattern ESCAPE '\'
       OR item_id LIKE :pattern ESCAPE '\')
ORDER BY title COLLATE NOCASE, item_id
LIMIT coalesce(:limit, -1) OFFSET :offset
