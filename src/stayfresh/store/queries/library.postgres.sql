-- The library listing on PostgreSQL (the shared statements are in library.sql).

-- name: list_library
-- lower() under COLLATE "C" stands for SQLite's NOCASE (and its NULLs first);
-- a NULL limit is no limit
SELECT account, item_id, title, authors, data, first_seen_at, updated_at, removed_at,
       download_path, download_size, downloaded_at
FROM library_items
WHERE account = :account AND (:include_removed OR removed_at IS NULL)
  AND (CAST(:pattern AS TEXT) IS NULL OR title ILIKE :pattern ESCAPE '\'
       OR authors ILIKE :pattern ESCAPE '\' OR item_id ILIKE :pattern ESCAPE '\')
ORDER BY lower(title) COLLATE "C" NULLS FIRST, item_id COLLATE "C"
LIMIT :limit OFFSET :offset
